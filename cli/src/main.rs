//! `session-ha`: the operator tool for session-ha store directories, for use in the middle
//! of an incident. `inspect`, `verify` and `recover` only read (safe beside a running node);
//! `export` backs up a closed store; `restore` makes a new store from a backup. `--json`
//! prints one JSON object on stdout (keys in `cli/README.md`); otherwise the output is
//! aligned text. Exit status: 0 yes, 1 no (damage, would fail, locked), 2 could not run.
//!
//! Files by role: `args` (parsing), `usage` (help texts), `cmd/*` (one per subcommand),
//! `report` (answers and exit status), `json` (encoder), `text` (alignment, sizes, dates),
//! `progress` (the stderr progress line), `store_dir` (what is in a directory).

mod args;
mod cmd;
mod json;
mod progress;
mod report;
mod store_dir;
mod text;
mod usage;

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use args::{Command, UsageError};
use cmd::Ui;
use json::{Obj, Value};
use report::{envelope, Exit, Failure, Report};

const NAME: &str = "session-ha";
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn main() -> ExitCode {
    let inv = match args::parse(std::env::args_os().skip(1)) {
        Ok(inv) => inv,
        Err(e) => return usage_error(&e).into(),
    };
    let ui = Ui {
        json: inv.json,
        progress: !inv.json && std::io::stderr().is_terminal(),
    };
    let name = inv.command.name();
    let keys = match inv.key_file.as_deref().map(session_ha::KeyRing::from_file) {
        None => None,
        Some(Ok(ring)) => Some(ring),
        Some(Err(e)) => return failure(name, &Failure::from(e), ui).into(),
    };
    let keys = keys.as_ref();
    let result = match &inv.command {
        Command::Help(topic) => Ok(help(*topic)),
        Command::Version => Ok(version()),
        Command::Inspect { dir } => cmd::inspect::run(dir, keys, ui),
        Command::Verify { dir } => cmd::verify::run(dir, keys, ui),
        Command::Recover { dir } => cmd::recover::run(dir, keys, ui),
        Command::Export { dir, file } => cmd::export::run(dir, file, keys, ui),
        Command::Restore { file, dir } => cmd::restore::run(file, dir, keys, ui),
        Command::Retire { dir, replica } => cmd::retire::run(dir, replica, keys, ui),
    };
    match result {
        Ok(report) => {
            let out = if ui.json {
                format!("{}\n", envelope(name, report.exit, report.json))
            } else {
                report.text
            };
            if write_stdout(&out) {
                report.exit.into()
            } else {
                Exit::Usage.into()
            }
        }
        Err(f) => failure(name, &f, ui).into(),
    }
}

/// Writes all of `s` to stdout; false when it cannot (a closed pipe).
fn write_stdout(s: &str) -> bool {
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes())
        .and_then(|()| out.flush())
        .is_ok()
}

/// Reports a failure: a sentence (and hint) on stderr; with `--json` also the JSON object.
fn failure(command: &str, f: &Failure, ui: Ui) -> Exit {
    let mut msg = format!("{NAME} {command}: error: {}\n", f.message);
    if let Some(hint) = &f.hint {
        msg.push_str(&format!("  hint: {hint}\n"));
    }
    let _ = std::io::stderr().write_all(msg.as_bytes());
    if ui.json {
        let obj = Obj::new().field("error", f.to_json());
        write_stdout(&format!("{}\n", envelope(command, f.exit, obj)));
    }
    f.exit
}

/// Reports a command line that does not parse: exit 2.
fn usage_error(e: &UsageError) -> Exit {
    let mut msg = format!("{NAME}: {}\n", e.message);
    match e.command {
        Some(c) => msg.push_str(&format!("Try '{NAME} help {c}'.\n")),
        None if e.message == "no command given" => msg = format!("{msg}\n{}", usage::OVERVIEW),
        None => msg.push_str(&format!("Try '{NAME} --help'.\n")),
    }
    let _ = std::io::stderr().write_all(msg.as_bytes());
    if e.json {
        let error = Failure::new(Exit::Usage, "usage", e.message.clone());
        let mut obj: Vec<(String, Value)> = vec![
            ("command".into(), e.command.into()),
            ("ok".into(), false.into()),
            ("exit_code".into(), u64::from(Exit::Usage.code()).into()),
        ];
        obj.push(("error".into(), error.to_json()));
        write_stdout(&format!("{}\n", Value::Object(obj)));
    }
    Exit::Usage
}

fn help(topic: Option<&str>) -> Report {
    let text = topic.and_then(usage::command).unwrap_or(usage::OVERVIEW);
    Report {
        exit: Exit::Ok,
        json: Obj::new().field("topic", topic).field("text", text),
        text: text.to_string(),
    }
}

fn version() -> Report {
    Report {
        exit: Exit::Ok,
        json: Obj::new().field("name", NAME).field("version", VERSION),
        text: format!("{NAME} {VERSION}\n"),
    }
}
