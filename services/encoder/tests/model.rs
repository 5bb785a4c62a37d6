//! Tests on the real model files (run `triage model fetch` first; `.ci/run` does).
//! `TRIAGE_MODEL_DIR` overrides the default model directory.

use std::path::PathBuf;
use std::sync::OnceLock;

use triage_encoder::blob::{Blob, BlobDType};
use triage_encoder::{cosine, Encoder, EncoderError, EncoderOptions, MatmulMode, MODEL_FILE};

fn model_dir() -> PathBuf {
    let dir = triage_fetch::model_dir_from_env();
    assert!(dir.join(MODEL_FILE).is_file(), "model missing in {}: run `triage model fetch`", dir.display());
    dir
}

fn encoder(mode: MatmulMode) -> &'static Encoder {
    static Q: OnceLock<Encoder> = OnceLock::new();
    static F: OnceLock<Encoder> = OnceLock::new();
    static I: OnceLock<Encoder> = OnceLock::new();
    let cell = match mode {
        MatmulMode::Quantized => &Q,
        MatmulMode::F32 => &F,
        MatmulMode::Int8 => &I,
    };
    cell.get_or_init(|| Encoder::load(&model_dir(), EncoderOptions { matmul: mode, ..Default::default() }).unwrap())
}

#[test]
fn blob_parses_with_the_documented_geometry() {
    let blob = Blob::open(&model_dir().join(MODEL_FILE)).unwrap();
    let c = &blob.config;
    assert_eq!((c.hidden, c.layers, c.heads, c.ffn, c.vocab), (384, 12, 12, 1536, 250_037));
    assert_eq!((c.max_positions, c.type_vocab, c.pad_id, c.bos_id, c.eos_id), (512, 2, 1, 0, 2));
    assert_eq!(blob.tensors.len(), 197);
    let mut q4 = 0;
    for t in &blob.tensors {
        let shape = blob.expected_shape(&t.name).unwrap_or_else(|| panic!("unexpected tensor {}", t.name));
        assert_eq!(t.elements, shape.iter().product::<usize>(), "{}", t.name);
        // Linear weights and the word table are Q4_0; everything else f32.
        let quantized = t.name == "emb.word" || t.name.ends_with(".w") && !t.name.contains("ln");
        assert_eq!(t.dtype == BlobDType::Q4_0, quantized, "{}", t.name);
        q4 += quantized as usize;
    }
    assert_eq!(q4, 1 + 12 * 6);
}

const VARIED: &[&str] = &[
    "咨询一下新农合报销比例",
    "明天上午我就带汽油去镇政府，让他们付出代价！",
    "老板拖欠我们三个月工资，二十多个工友准备一起去县政府上访。",
    "网格员上报：当事人王某因宅基地纠纷情绪激动，扬言“谁来量地我就跟谁拼命”。",
    "小区门口的路灯坏了两个月了，晚上出行很不方便，麻烦尽快修一下。😡",
    "I will burn down the factory tomorrow. 明天见！",
    "调解记录：双方就赔偿金额达成一致，申请人表示不再上访。",
    "我妈八十多岁了，冬天家里没有暖气，低保也被取消了，实在活不下去了",
];

#[test]
fn quantized_and_dequantized_paths_agree() {
    let (q, f) = (encoder(MatmulMode::Quantized), encoder(MatmulMode::F32));
    for t in VARIED {
        let c = cosine(&q.embed(t).unwrap().vector, &f.embed(t).unwrap().vector);
        assert!(c >= 0.999, "cosine {c} for {t}");
    }
}

#[test]
fn int8_and_f32_paths_agree() {
    let (i, f) = (encoder(MatmulMode::Int8), encoder(MatmulMode::F32));
    assert!(i.int8_kernel().is_some() && f.int8_kernel().is_none());
    for t in VARIED {
        let (a, b) = (i.embed(t).unwrap(), f.embed(t).unwrap());
        assert_eq!((a.tokens, a.truncated), (b.tokens, b.truncated));
        let c = cosine(&a.vector, &b.vector);
        assert!(c >= 0.995, "cosine {c} for {t}");
    }
}

#[test]
fn int8_batches_pack_texts_without_changing_their_vectors() {
    // Tokens of all texts share the linear layers' matrices; each token is
    // quantized on its own and attends only to its own text, so a batch must
    // give each text the vector it gets alone.
    let e = encoder(MatmulMode::Int8);
    let long = "拖欠工资的问题反映了很多次，一直没有人处理。".repeat(40);
    let texts: Vec<&str> = VARIED.iter().copied().chain([long.as_str(), "好"]).collect();
    let batch = e.embed_batch(&texts).unwrap();
    for (t, b) in texts.iter().zip(&batch) {
        let single = e.embed(t).unwrap();
        assert_eq!((single.tokens, single.truncated), (b.tokens, b.truncated));
        let c = cosine(&single.vector, &b.vector);
        assert!(c >= 0.99999, "packing changed the vector of {t}: cosine {c}");
    }
    let norm: f32 = batch[VARIED.len()].vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "the truncated text's vector has norm {norm}");
}

#[test]
fn matches_the_pytorch_reference() {
    // Vectors from transformers' BertModel on the same weights dequantized to
    // f32 (eval/bench/e5_torch.py reference). The f32 path must match closely;
    // the Q8 activation quantization of the Q4 path costs a little more.
    let fixture: serde_json::Value = serde_json::from_str(include_str!("fixtures/torch_reference.json")).unwrap();
    for item in fixture["items"].as_array().unwrap() {
        let text = item["text"].as_str().unwrap();
        let reference: Vec<f32> =
            item["vector"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let f = cosine(&encoder(MatmulMode::F32).embed(text).unwrap().vector, &reference);
        let q = cosine(&encoder(MatmulMode::Quantized).embed(text).unwrap().vector, &reference);
        let i = cosine(&encoder(MatmulMode::Int8).embed(text).unwrap().vector, &reference);
        assert!(f >= 0.9999, "f32 path cosine {f} for {text}");
        assert!(q >= 0.999, "quantized path cosine {q} for {text}");
        assert!(i >= 0.995, "int8 path cosine {i} for {text}");
    }
}

#[test]
fn batch_results_equal_single_results_in_input_order() {
    let e = encoder(MatmulMode::Quantized);
    let batch = e.embed_batch(VARIED).unwrap();
    assert_eq!(batch.len(), VARIED.len());
    for (t, b) in VARIED.iter().zip(&batch) {
        let single = e.embed(t).unwrap();
        assert_eq!(single.tokens, b.tokens);
        let c = cosine(&single.vector, &b.vector);
        assert!(c >= 0.9999, "padding changed the vector of {t}: cosine {c}");
    }
}

/// (anchor, paraphrase, same-topic hard negative).
///
/// Not here: a negative that only flips polarity ("补偿款已经全部发放到位" vs
/// "一直没有发放") scores *above* the paraphrase (0.968 vs 0.963). Sentence
/// vectors barely see negation, so the risk classifier handles it with cues.
const TRIPLES: &[(&str, &str, &str)] = &[
    ("老板拖欠了我三个月的工资", "公司已经三个月没给我发薪水了", "老板这个月提前把工资发给我们了"),
    ("小区停水已经三天了", "我们小区连续三天没有自来水", "小区的水费这个月涨价了"),
    ("他扬言要放火烧了村委会", "他威胁说要一把火把村委会点了", "村委会昨天组织了消防演练"),
    ("邻居家装修噪音太大，晚上十二点还在施工", "隔壁半夜还在装修，吵得睡不着", "邻居家装修完了，请我们去吃饭"),
    ("她说再不解决就从楼上跳下去", "她扬言如果问题不处理就要跳楼", "她家楼上的住户经常往下扔垃圾"),
    ("村里的征地补偿款一直没有发放", "征收土地的补偿金到现在还没给村民", "村民想咨询征地补偿的标准是怎么算的"),
    ("孩子上学的校车经常超载", "接送学生的校车总是载客超员", "学校新买了几辆校车"),
    ("工厂排放的废气熏得人头疼", "化工厂排出的臭气让附近居民头痛难受", "工厂在招工，工资待遇不错"),
    (
        "几十个工人准备明天去市政府门口拉横幅",
        "明天有数十名工人计划到市政府前打横幅抗议",
        "市政府门口新挂了一条宣传横幅",
    ),
    ("医院乱收费，一次检查收了两千多", "医院检查费用收得太离谱，一次就两千多元", "医院的检查报告要三天后才能拿"),
    ("养老金这个月又没有按时到账", "本月的退休金还是没有准时发下来", "养老金今年上调了百分之三"),
    ("物业把小区的绿地改成了停车场", "小区绿化带被物业擅自改建成停车位", "物业给小区新种了一片草坪"),
];

#[test]
fn paraphrases_score_above_same_topic_hard_negatives() {
    let e = encoder(MatmulMode::Quantized);
    let mut failures = Vec::new();
    for (a, p, n) in TRIPLES {
        let v = e.embed_batch(&[*a, *p, *n]).unwrap();
        let (sp, sn) = (cosine(&v[0].vector, &v[1].vector), cosine(&v[0].vector, &v[2].vector));
        if sp <= sn {
            failures.push(format!("{a}: paraphrase {sp:.4} <= negative {sn:.4}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn empty_text_is_an_error_and_long_text_is_truncated_and_reported() {
    let e = encoder(MatmulMode::Quantized);
    assert!(matches!(e.embed(""), Err(EncoderError::EmptyText { .. })));
    assert!(matches!(e.embed(" \n\t "), Err(EncoderError::EmptyText { .. })));
    assert!(matches!(e.embed_batch(&["正常文本", ""]), Err(EncoderError::EmptyText { index: 1 })));

    let short = e.embed("工资拖欠问题").unwrap();
    assert!(!short.truncated && short.tokens < 512);
    let long = "拖欠工资的问题反映了很多次，一直没有人处理。".repeat(80);
    let emb = e.embed(&long).unwrap();
    assert!(emb.truncated, "{} tokens", emb.tokens);
    assert!(emb.tokens > 512);
    let norm: f32 = emb.vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4 && emb.vector.iter().all(|x| x.is_finite()));
}
