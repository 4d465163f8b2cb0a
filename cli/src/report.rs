//! What a command hands back to `main`: a [`Report`] (JSON fields, text, exit status) or a
//! [`Failure`] (why it could not answer). `main` prints either, as JSON or as text.

use std::path::Path;
use std::process::ExitCode;

use session_ha::Error;

use crate::json::{Obj, Value};

/// Exit status, as documented in the help.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: done, and the answer is yes (intact, would recover, written and verified).
    Ok,
    /// 1: the answer is no (damage, recovery would fail, locked, unreadable backup).
    No,
    /// 2: the command could not run (arguments, not a store, target exists, I/O).
    Usage,
}

impl Exit {
    /// The numeric status.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::No => 1,
            Exit::Usage => 2,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// A command's answer.
#[derive(Debug)]
pub struct Report {
    /// Exit status.
    pub exit: Exit,
    /// Command-specific JSON fields (after `command`, `ok` and `exit_code`).
    pub json: Obj,
    /// The human-readable report.
    pub text: String,
}

/// Why a command could not give its answer.
#[derive(Debug)]
pub struct Failure {
    /// Exit status.
    pub exit: Exit,
    /// Stable short name: a library error's [`Error::kind`], or `usage`, `not_found`,
    /// `not_a_store`, `exists`, `output`.
    pub kind: &'static str,
    /// What went wrong, as a sentence.
    pub message: String,
    /// What to do about it, if there is something to say.
    pub hint: Option<String>,
}

impl Failure {
    /// A failure with no hint.
    pub fn new(exit: Exit, kind: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            exit,
            kind,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }

    /// The JSON error object.
    pub fn to_json(&self) -> Value {
        Obj::new()
            .field("kind", self.kind)
            .field("message", &self.message)
            .field("hint", self.hint.clone())
            .into()
    }
}

impl From<Error> for Failure {
    /// Damage and a held lock are answers ("no", exit 1); everything else means the command
    /// could not run (exit 2).
    fn from(e: Error) -> Failure {
        let exit = match e {
            Error::Locked { .. }
            | Error::Corrupt { .. }
            | Error::DataLoss(_)
            | Error::Tampered { .. } => Exit::No,
            _ => Exit::Usage,
        };
        let missing_key = matches!(e, Error::MissingKey { .. });
        let f = Failure::new(exit, e.kind(), e.to_string());
        if missing_key {
            return f.hint("pass --key-file FILE with the key file that holds that key");
        }
        f
    }
}

/// A failure for an I/O error on `path` outside the library.
pub fn io_failure(what: &str, path: &Path, e: &std::io::Error) -> Failure {
    Failure::new(Exit::Usage, "io", format!("{what} {}: {e}", path.display()))
}

/// The whole JSON object printed for a command's answer.
pub fn envelope(command: &str, exit: Exit, fields: Obj) -> Value {
    let mut head = Obj::new()
        .field("command", command)
        .field("ok", exit == Exit::Ok)
        .field("exit_code", u64::from(exit.code()));
    let Value::Object(rest) = Value::from(fields) else {
        return head.into();
    };
    for (k, v) in rest {
        head = head.field(&k, v);
    }
    head.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_puts_the_common_keys_first() {
        let v = envelope("verify", Exit::No, Obj::new().field("intact", false));
        assert_eq!(
            v.to_string(),
            r#"{"command":"verify","ok":false,"exit_code":1,"intact":false}"#
        );
    }

    #[test]
    fn a_held_lock_is_an_answer_and_io_is_not() {
        let locked = Failure::from(Error::Locked { dir: "/d".into() });
        assert_eq!((locked.exit, locked.kind), (Exit::No, "locked"));
        let io = Failure::from(Error::InvalidArgument("x".into()));
        assert_eq!(io.exit, Exit::Usage);
    }
}
