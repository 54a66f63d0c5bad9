//! Tool arguments of the mail app and their validation.

use schemars::JsonSchema;
use serde::Deserialize;

use super::outbox::Draft;
use crate::validate::{max_len, single_line};

/// Maximum length of a subject line, in characters.
pub const MAX_SUBJECT_CHARS: usize = 200;

/// Maximum size of a message body, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Maximum length of an email address, in characters (the SMTP path limit).
pub const MAX_ADDRESS_CHARS: usize = 254;

/// Arguments of `search_mail`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchMailParams {
    /// Text to find in the subject, body or sender, ignoring case. An empty query matches all.
    pub query: String,
}

/// Arguments of `read_mail`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReadMailParams {
    /// Id of the message, as search_mail returns it (e.g. "m1").
    pub id: String,
}

/// Arguments of `send_mail`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SendMailParams {
    /// One recipient email address, e.g. alice@example.org.
    pub to: String,
    /// One-line subject, at most 200 characters.
    pub subject: String,
    /// Text of the message, at most 64 KiB.
    pub body: String,
}

/// Validates a `send_mail` call and returns the message to queue.
pub fn draft(params: SendMailParams) -> Result<Draft, String> {
    let to = params.to.trim().to_owned();
    check_address(&to)?;
    let subject = params.subject.trim().to_owned();
    single_line("subject", &subject, MAX_SUBJECT_CHARS)?;
    max_len("body", &params.body, MAX_BODY_BYTES)?;
    Ok(Draft {
        to,
        subject,
        body: params.body,
    })
}

/// Checks the shape `local@domain` with no spaces. It does not check that the address exists.
fn check_address(address: &str) -> Result<(), String> {
    let invalid = |reason: &str| {
        Err(format!(
            "invalid recipient {address:?}: {reason}; give one address such as alice@example.org"
        ))
    };
    if address.chars().count() > MAX_ADDRESS_CHARS {
        return invalid("longer than 254 characters");
    }
    if address
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == ';')
    {
        return invalid("contains a space, comma, semicolon or control character");
    }
    match address.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
        {
            Ok(())
        }
        _ => invalid("expected exactly one @ with text on both sides"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(to: &str, subject: &str) -> SendMailParams {
        SendMailParams {
            to: to.to_owned(),
            subject: subject.to_owned(),
            body: "Hi".to_owned(),
        }
    }

    #[test]
    fn draft_trims_fields() {
        let draft = draft(params(" alice@example.org ", " Re: lunch ")).expect("valid");
        assert_eq!(draft.to, "alice@example.org");
        assert_eq!(draft.subject, "Re: lunch");
    }

    #[test]
    fn draft_rejects_bad_recipients() {
        for to in [
            "",
            "alice",
            "@example.org",
            "alice@",
            "a@b@c",
            "alice@example.org, bob@example.org",
            "alice @example.org",
        ] {
            let err = draft(params(to, "Hi")).expect_err(to);
            assert!(err.starts_with("invalid recipient"), "{to}: {err}");
        }
    }

    #[test]
    fn draft_rejects_multiline_subject() {
        let err = draft(params("alice@example.org", "one\ntwo")).expect_err("two lines");
        assert!(err.starts_with("subject contains a line break"), "{err}");
    }
}
