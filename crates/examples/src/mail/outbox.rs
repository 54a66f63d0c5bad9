//! The outbox: every sent message is one line of `outbox.jsonl` in the state directory. Nothing
//! delivers it further, because the apps have no network.

use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::store::{check_state_dir, JsonLinesFile, StoreError};

/// File name of the outbox log inside the state directory.
pub const OUTBOX_FILE: &str = "outbox.jsonl";

/// Prefix of outgoing message ids, followed by a sequence number from 1.
const ID_PREFIX: &str = "out-";

/// One queued outgoing message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OutgoingMessage {
    /// Message id, such as "out-1".
    pub id: String,
    /// Sender address: the mailbox owner.
    pub from: String,
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Full text of the message.
    pub body: String,
    /// Time queued, RFC 3339 in UTC.
    pub queued_at: String,
}

/// A validated message to queue.
#[derive(Debug, Clone)]
pub struct Draft {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// The outbox log and the number of the last queued message.
#[derive(Debug)]
pub struct Outbox {
    log: JsonLinesFile,
    last_number: u64,
}

impl Outbox {
    /// Opens the outbox in `state_dir`, creating the log when missing.
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        check_state_dir(state_dir)?;
        let (log, messages) = JsonLinesFile::open::<OutgoingMessage>(&state_dir.join(OUTBOX_FILE))?;
        let last_number = messages
            .iter()
            .filter_map(|message| message.id.strip_prefix(ID_PREFIX)?.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        Ok(Self { log, last_number })
    }

    /// Number of the most recent queued message, or 0 when the outbox is empty.
    pub fn last_number(&self) -> u64 {
        self.last_number
    }

    /// Appends `draft` from `from` to the outbox and returns it once it is on disk.
    pub fn queue(
        &mut self,
        from: &str,
        draft: Draft,
        queued_at: DateTime<Utc>,
    ) -> Result<OutgoingMessage, StoreError> {
        let number = self.last_number + 1;
        let message = OutgoingMessage {
            id: format!("{ID_PREFIX}{number}"),
            from: from.to_owned(),
            to: draft.to,
            subject: draft.subject,
            body: draft.body,
            queued_at: queued_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        };
        self.log.append(&message)?;
        self.last_number = number;
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn draft(to: &str) -> Draft {
        Draft {
            to: to.to_owned(),
            subject: "Hello".to_owned(),
            body: "Hi there".to_owned(),
        }
    }

    #[test]
    fn queue_numbers_continue_after_reopen() {
        let dir = tempfile::tempdir().expect("create temp dir");
        let at = Utc
            .with_ymd_and_hms(2025, 5, 8, 12, 0, 0)
            .single()
            .expect("valid test time");

        let mut outbox = Outbox::open(dir.path()).expect("open");
        let first = outbox
            .queue("sam@example.net", draft("alice@example.org"), at)
            .expect("queue first");
        assert_eq!(first.id, "out-1");
        assert_eq!(first.queued_at, "2025-05-08T12:00:00Z");
        drop(outbox);

        let mut outbox = Outbox::open(dir.path()).expect("reopen");
        assert_eq!(outbox.last_number(), 1);
        let second = outbox
            .queue("sam@example.net", draft("bob@example.org"), at)
            .expect("queue second");
        assert_eq!(second.id, "out-2");

        let text = std::fs::read_to_string(dir.path().join(OUTBOX_FILE)).expect("read outbox");
        assert_eq!(text.lines().count(), 2);
    }
}
