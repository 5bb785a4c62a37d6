//! `triage keys new`: a new API key and the table to paste into the keys file.

use clap::{Args, Subcommand};

use triage_server::http::{new_key, Role};

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Print a new key (stderr) and its [[key]] table (stdout) for the keys file.
    New(NewKeyArgs),
}

#[derive(Args, Debug)]
pub struct NewKeyArgs {
    /// A name for the key's holder, shown in logs.
    #[arg(long, env = "TRIAGE_KEY_NAME")]
    pub name: String,
    #[arg(long, env = "TRIAGE_KEY_ROLE", value_enum)]
    pub role: Role,
}

pub fn run(c: KeysCommand) -> anyhow::Result<()> {
    match c {
        KeysCommand::New(a) => {
            let (key, table) = new_key(&a.name, a.role)?;
            eprintln!("key (give it to {}; it is not stored anywhere): {key}", a.name);
            print!("{table}");
            Ok(())
        }
    }
}
