//! The read-only inbox, loaded from a fixture compiled into the binary.

use chrono::{DateTime, FixedOffset};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::validate::contains_ignore_case;

const FIXTURE: &str = include_str!("../../fixtures/mailbox.json");

/// Failure to load the built-in mailbox fixture.
#[derive(Debug, Error)]
pub enum MailboxError {
    #[error("built-in mailbox fixture is invalid JSON: {0}")]
    Parse(#[source] serde_json::Error),
    #[error("built-in mailbox message {id}: invalid date {date:?}: {source}")]
    Date {
        id: String,
        date: String,
        source: chrono::ParseError,
    },
}

/// One received message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Message {
    /// Message id, such as "m1".
    pub id: String,
    /// Sender address.
    pub from: String,
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Time received, RFC 3339 in UTC.
    pub date: String,
    /// Full text of the message.
    pub body: String,
}

/// The fields of a message that a search returns.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct MessageSummary {
    /// Message id, for read_mail.
    pub id: String,
    /// Sender address.
    pub from: String,
    /// Subject line.
    pub subject: String,
    /// Time received, RFC 3339 in UTC.
    pub date: String,
}

impl From<&Message> for MessageSummary {
    fn from(message: &Message) -> Self {
        Self {
            id: message.id.clone(),
            from: message.from.clone(),
            subject: message.subject.clone(),
            date: message.date.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct MailboxFile {
    owner: String,
    messages: Vec<Message>,
}

/// The inbox: the owner's address and the received messages, newest first.
#[derive(Debug, Clone)]
pub struct Mailbox {
    owner: String,
    messages: Vec<Message>,
}

impl Mailbox {
    /// Loads the mailbox built into the binary.
    pub fn builtin() -> Result<Self, MailboxError> {
        let file: MailboxFile = serde_json::from_str(FIXTURE).map_err(MailboxError::Parse)?;
        let mut dated = Vec::with_capacity(file.messages.len());
        for message in file.messages {
            let received = parse_date(&message)?;
            dated.push((received, message));
        }
        dated.sort_by(|(a, _), (b, _)| b.cmp(a));
        Ok(Self {
            owner: file.owner,
            messages: dated.into_iter().map(|(_, message)| message).collect(),
        })
    }

    /// Address of the mailbox owner, used as the sender of outgoing mail.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Returns every message, newest first.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// Returns the messages whose subject, body or sender contains `query`, ignoring case,
    /// newest first. An empty query matches every message.
    pub fn search(&self, query: &str) -> Vec<&Message> {
        let needle = query.trim().to_lowercase();
        self.messages
            .iter()
            .filter(|message| {
                contains_ignore_case(&message.subject, &needle)
                    || contains_ignore_case(&message.body, &needle)
                    || contains_ignore_case(&message.from, &needle)
            })
            .collect()
    }

    /// Returns the message with `id`.
    pub fn get(&self, id: &str) -> Option<&Message> {
        self.messages.iter().find(|message| message.id == id)
    }
}

fn parse_date(message: &Message) -> Result<DateTime<FixedOffset>, MailboxError> {
    DateTime::parse_from_rfc3339(&message.date).map_err(|source| MailboxError::Date {
        id: message.id.clone(),
        date: message.date.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(messages: &[&Message]) -> Vec<String> {
        messages.iter().map(|message| message.id.clone()).collect()
    }

    #[test]
    fn builtin_loads_newest_first() {
        let mailbox = Mailbox::builtin().expect("fixture loads");
        assert_eq!(mailbox.owner(), "sam@example.net");
        let all: Vec<&Message> = mailbox.messages().iter().collect();
        assert_eq!(ids(&all), vec!["m6", "m5", "m4", "m3", "m2", "m1"]);
    }

    #[test]
    fn search_matches_subject_body_and_sender() {
        let mailbox = Mailbox::builtin().expect("fixture loads");
        assert_eq!(ids(&mailbox.search("INVOICE")), vec!["m1"]);
        assert_eq!(ids(&mailbox.search("tracking number")), vec!["m4"]);
        assert_eq!(ids(&mailbox.search("alice@")), vec!["m2"]);
        assert_eq!(ids(&mailbox.search("roadmap")), vec!["m2"]);
        assert!(mailbox.search("no such words").is_empty());
        assert_eq!(mailbox.search(" ").len(), 6);
    }

    #[test]
    fn get_finds_by_exact_id() {
        let mailbox = Mailbox::builtin().expect("fixture loads");
        assert_eq!(
            mailbox.get("m3").map(|m| m.from.as_str()),
            Some("bob@example.org")
        );
        assert!(mailbox.get("M3").is_none());
        assert!(mailbox.get("m9").is_none());
    }
}
