//! Command-line parsing, by hand: a command word, its positional arguments, and the flags
//! `--json`, `--key-file FILE` (or `--key-file=FILE`), `-h`/`--help` and `-V`/`--version`
//! anywhere on the line. `--` ends the flags
//! (for paths that start with `-`). Paths stay `OsString`s, so any path the OS accepts works.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

/// The commands that take arguments, by name, with their positional parameters.
pub const COMMANDS: [(&str, &[&str]); 6] = [
    ("inspect", &["DIR"]),
    ("verify", &["DIR"]),
    ("recover", &["DIR"]),
    ("export", &["DIR", "FILE"]),
    ("restore", &["FILE", "DIR"]),
    ("retire", &["DIR", "REPLICA"]),
];

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Show a store directory's layout and recovered state.
    Inspect {
        /// The store directory.
        dir: PathBuf,
    },
    /// Check every checksum.
    Verify {
        /// The store directory.
        dir: PathBuf,
    },
    /// Dry-run recovery.
    Recover {
        /// The store directory.
        dir: PathBuf,
    },
    /// Back up a closed store.
    Export {
        /// The store directory.
        dir: PathBuf,
        /// The backup file to create.
        file: PathBuf,
    },
    /// Make a new store from a backup.
    Restore {
        /// The backup file.
        file: PathBuf,
        /// The new store directory.
        dir: PathBuf,
    },
    /// Retire a replica from a closed store's membership.
    Retire {
        /// The store directory.
        dir: PathBuf,
        /// The replica id (16 hex digits) or region name.
        replica: String,
    },
    /// Print help: the overview, or one command's.
    Help(Option<&'static str>),
    /// Print the version.
    Version,
}

impl Command {
    /// The command's name, for messages and the `command` key of JSON output.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Inspect { .. } => "inspect",
            Command::Verify { .. } => "verify",
            Command::Recover { .. } => "recover",
            Command::Export { .. } => "export",
            Command::Restore { .. } => "restore",
            Command::Retire { .. } => "retire",
            Command::Help(_) => "help",
            Command::Version => "version",
        }
    }
}

/// A parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// What to do.
    pub command: Command,
    /// Whether `--json` was given.
    pub json: bool,
    /// The key file given with `--key-file`, for encrypted stores and backups.
    pub key_file: Option<PathBuf>,
}

/// A command line that does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError {
    /// What is wrong, as a sentence.
    pub message: String,
    /// The command it concerns, if one was recognised (its help is the hint).
    pub command: Option<&'static str>,
    /// Whether `--json` was on the line (the error is then also reported as JSON).
    pub json: bool,
}

/// The canonical name of a command word, if it is one.
fn command_name(word: &str) -> Option<&'static str> {
    COMMANDS
        .iter()
        .map(|(n, _)| *n)
        .chain(["help"])
        .find(|n| *n == word)
}

/// Parses the arguments after the program name.
///
/// # Errors
/// A [`UsageError`] for an unknown command or flag, or a wrong number of arguments.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, UsageError> {
    let (mut json, mut help, mut version) = (false, false, false);
    let mut words: Vec<OsString> = Vec::new();
    let mut unknown: Option<String> = None;
    let mut flags_done = false;
    let mut key_file: Option<PathBuf> = None;
    let mut key_file_missing = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let flag = if flags_done { None } else { arg.to_str() };
        match flag {
            Some("--") => flags_done = true,
            Some("--json") => json = true,
            Some("--key-file") => match args.next() {
                Some(path) => key_file = Some(PathBuf::from(path)),
                None => key_file_missing = true,
            },
            Some(f) if f.starts_with("--key-file=") => {
                key_file = Some(PathBuf::from(&f["--key-file=".len()..]));
            }
            Some("-h" | "--help") => help = true,
            Some("-V" | "--version") => version = true,
            Some(f) if f.starts_with('-') && f.len() > 1 => {
                unknown.get_or_insert_with(|| f.to_string());
            }
            _ if arg.to_str().is_none() && !flags_done && starts_with_dash(&arg) => {
                unknown.get_or_insert_with(|| arg.to_string_lossy().into_owned());
            }
            _ => words.push(arg),
        }
    }
    let mut words = words.into_iter();
    let first = words.next();
    let command = match &first {
        None => None,
        Some(w) => match w.to_str().and_then(command_name) {
            Some(c) => Some(c),
            None => {
                return Err(UsageError {
                    message: format!(
                        "unknown command '{}' (commands: {}, help)",
                        w.to_string_lossy(),
                        COMMANDS.map(|(n, _)| n).join(", ")
                    ),
                    command: None,
                    json,
                })
            }
        },
    };
    let err = |message: String| UsageError {
        message,
        command: command.filter(|c| *c != "help"),
        json,
    };
    if let Some(f) = unknown {
        let on = command.map_or(String::new(), |c| format!(" for '{c}'"));
        return Err(err(format!("unknown option '{f}'{on}")));
    }
    if key_file_missing || key_file.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
        return Err(err("--key-file needs a FILE".into()));
    }
    let rest: Vec<OsString> = words.collect();
    if version && !help {
        return Ok(Invocation {
            command: Command::Version,
            json,
            key_file,
        });
    }
    let Some(command) = command else {
        if help {
            return Ok(Invocation {
                command: Command::Help(None),
                json,
                key_file,
            });
        }
        return Err(err("no command given".into()));
    };
    if help {
        return Ok(Invocation {
            command: Command::Help(Some(command).filter(|c| *c != "help")),
            json,
            key_file,
        });
    }
    if command == "help" {
        let topic = match rest.as_slice() {
            [] => None,
            [t] => match t.to_str().and_then(command_name) {
                Some(c) => Some(c).filter(|c| *c != "help"),
                None => {
                    return Err(err(format!(
                        "no help for '{}': not a command",
                        t.to_string_lossy()
                    )))
                }
            },
            [_, extra, ..] => {
                return Err(err(format!(
                    "unexpected argument '{}' for 'help'",
                    extra.to_string_lossy()
                )))
            }
        };
        return Ok(Invocation {
            command: Command::Help(topic),
            json,
            key_file,
        });
    }
    let params = COMMANDS
        .iter()
        .find(|(n, _)| *n == command)
        .map_or(&[][..], |(_, p)| *p);
    if rest.len() < params.len() {
        return Err(err(format!(
            "'{command}' needs {}: missing {}",
            params.join(" "),
            params[rest.len()..].join(" ")
        )));
    }
    if let Some(extra) = rest.get(params.len()) {
        return Err(err(format!(
            "unexpected argument '{}' for '{command}' (it takes {})",
            extra.to_string_lossy(),
            params.join(" ")
        )));
    }
    let mut paths = rest.into_iter().map(PathBuf::from);
    let mut next = || paths.next().unwrap_or_default();
    let command = match command {
        "inspect" => Command::Inspect { dir: next() },
        "verify" => Command::Verify { dir: next() },
        "recover" => Command::Recover { dir: next() },
        "export" => Command::Export {
            dir: next(),
            file: next(),
        },
        "retire" => Command::Retire {
            dir: next(),
            replica: next().to_string_lossy().into_owned(),
        },
        _ => Command::Restore {
            file: next(),
            dir: next(),
        },
    };
    Ok(Invocation {
        command,
        json,
        key_file,
    })
}

/// Whether a (possibly non-UTF-8) argument starts with `-` and is more than `-` alone.
fn starts_with_dash(arg: &OsStr) -> bool {
    let lossy = arg.to_string_lossy();
    lossy.starts_with('-') && lossy.len() > 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Invocation, UsageError> {
        parse(args.iter().map(OsString::from))
    }

    fn cmd(args: &[&str]) -> Command {
        p(args).unwrap().command
    }

    #[test]
    fn commands_and_their_paths() {
        assert_eq!(cmd(&["verify", "/d"]), Command::Verify { dir: "/d".into() });
        assert_eq!(
            cmd(&["export", "/d", "/b"]),
            Command::Export {
                dir: "/d".into(),
                file: "/b".into()
            }
        );
        assert_eq!(
            cmd(&["restore", "/b", "/d"]),
            Command::Restore {
                file: "/b".into(),
                dir: "/d".into()
            }
        );
    }

    #[test]
    fn json_goes_anywhere() {
        for line in [
            &["--json", "inspect", "d"][..],
            &["inspect", "--json", "d"],
            &["inspect", "d", "--json"],
        ] {
            let inv = p(line).unwrap();
            assert!(inv.json);
            assert_eq!(inv.command, Command::Inspect { dir: "d".into() });
        }
    }

    #[test]
    fn key_file_goes_anywhere_in_both_spellings() {
        for line in [
            &["--key-file", "/k", "verify", "d"][..],
            &["verify", "d", "--key-file", "/k"],
            &["verify", "--key-file=/k", "d"],
        ] {
            let inv = p(line).unwrap();
            assert_eq!(inv.key_file, Some("/k".into()));
            assert_eq!(inv.command, Command::Verify { dir: "d".into() });
        }
        assert_eq!(p(&["verify", "d"]).unwrap().key_file, None);
        let e = p(&["verify", "d", "--key-file"]).unwrap_err();
        assert_eq!(e.message, "--key-file needs a FILE");
        assert!(p(&["verify", "d", "--key-file="]).is_err());
    }

    #[test]
    fn double_dash_ends_flags() {
        assert_eq!(
            cmd(&["verify", "--", "--json"]),
            Command::Verify {
                dir: "--json".into()
            }
        );
    }

    #[test]
    fn help_and_version() {
        assert_eq!(cmd(&["--help"]), Command::Help(None));
        assert_eq!(cmd(&["-h"]), Command::Help(None));
        assert_eq!(cmd(&["help"]), Command::Help(None));
        assert_eq!(cmd(&["help", "export"]), Command::Help(Some("export")));
        assert_eq!(cmd(&["export", "--help"]), Command::Help(Some("export")));
        assert_eq!(cmd(&["--version"]), Command::Version);
        assert_eq!(cmd(&["-V"]), Command::Version);
    }

    #[test]
    fn usage_errors_name_the_problem() {
        let e = p(&["verify"]).unwrap_err();
        assert_eq!(e.message, "'verify' needs DIR: missing DIR");
        assert_eq!(e.command, Some("verify"));
        let e = p(&["export", "d"]).unwrap_err();
        assert_eq!(e.message, "'export' needs DIR FILE: missing FILE");
        let e = p(&["verify", "a", "b"]).unwrap_err();
        assert!(
            e.message.contains("unexpected argument 'b'"),
            "{}",
            e.message
        );
        let e = p(&["verify", "--force", "d"]).unwrap_err();
        assert_eq!(e.message, "unknown option '--force' for 'verify'");
        let e = p(&["frobnicate"]).unwrap_err();
        assert!(e.message.starts_with("unknown command 'frobnicate'"));
        assert_eq!(e.command, None);
        let e = p(&["help", "nope"]).unwrap_err();
        assert!(e.message.contains("not a command"));
        assert_eq!(p(&[]).unwrap_err().message, "no command given");
        let e = p(&["--json", "verify"]).unwrap_err();
        assert!(e.json);
    }
}
