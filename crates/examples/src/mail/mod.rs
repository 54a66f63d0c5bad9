//! The mail app: searches and reads a built-in inbox and queues outgoing mail in the state
//! directory.

mod mailbox;
mod outbox;
mod request;

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use rmcp::{
    handler::server::{router::tool::ToolRouter, tool::schema_for_output, wrapper::Parameters},
    model::CallToolResult,
    tool, tool_handler, tool_router, ErrorData, ServerHandler,
};
use schemars::JsonSchema;
use serde::Serialize;

pub use mailbox::{Mailbox, MailboxError, Message, MessageSummary};
pub use outbox::{Draft, Outbox, OutgoingMessage, OUTBOX_FILE};
pub use request::{ReadMailParams, SearchMailParams, SendMailParams};

use crate::store::StoreError;
use crate::tool_result::{failure, poisoned_lock, success};

/// Failure to start the mail app.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error(transparent)]
    Mailbox(#[from] MailboxError),
    #[error(transparent)]
    Outbox(#[from] StoreError),
}

/// Structured result of `search_mail`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MessageList {
    /// Matching messages, newest first.
    pub messages: Vec<MessageSummary>,
}

/// MCP server for the mail app.
#[derive(Debug, Clone)]
pub struct MailServer {
    mailbox: Arc<Mailbox>,
    outbox: Arc<Mutex<Outbox>>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl MailServer {
    /// Loads the built-in inbox and opens the outbox in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Self, MailError> {
        let mailbox = Mailbox::builtin()?;
        let outbox = Outbox::open(state_dir)?;
        tracing::info!(
            inbox = mailbox.messages().len(),
            outbox = outbox.last_number(),
            "mailbox loaded"
        );
        Ok(Self {
            mailbox: Arc::new(mailbox),
            outbox: Arc::new(Mutex::new(outbox)),
            tool_router: Self::tool_router(),
        })
    }

    #[tool(
        description = "Searches the user's email inbox for messages whose subject, body or \
                       sender contains the query text, ignoring case, and returns each match's \
                       id, sender, subject and date, newest first. An empty query lists the \
                       whole inbox. Use read_mail to get a message's full text.",
        annotations(title = "Search mail", read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<MessageList>()
    )]
    fn search_mail(
        &self,
        Parameters(params): Parameters<SearchMailParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let messages: Vec<MessageSummary> = self
            .mailbox
            .search(&params.query)
            .into_iter()
            .map(MessageSummary::from)
            .collect();
        tracing::debug!(matches = messages.len(), "mail searched");

        let text = if messages.is_empty() {
            format!("no messages match {:?}", params.query)
        } else {
            messages
                .iter()
                .map(|m| format!("{}, {}, from {}: {}", m.id, m.date, m.from, m.subject))
                .collect::<Vec<_>>()
                .join("\n")
        };
        success(text, &MessageList { messages })
    }

    #[tool(
        description = "Reads one email message from the user's inbox by its id (as returned by \
                       search_mail) and returns its sender, recipient, date, subject and full \
                       body.",
        annotations(title = "Read mail", read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<Message>()
    )]
    fn read_mail(
        &self,
        Parameters(params): Parameters<ReadMailParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let id = params.id.trim();
        let Some(message) = self.mailbox.get(id) else {
            return Ok(failure(format!(
                "no message with id {id:?}; search_mail returns the ids of existing messages"
            )));
        };
        let text = format!(
            "From: {}\nTo: {}\nDate: {}\nSubject: {}\n\n{}",
            message.from, message.to, message.date, message.subject, message.body
        );
        success(text, message)
    }

    #[tool(
        description = "Sends an email from the user's address to one recipient with a subject \
                       and a body, and returns the id of the queued message. The message leaves \
                       the user's control once sent.",
        annotations(
            title = "Send mail",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        ),
        output_schema = schema_for_output::<OutgoingMessage>()
    )]
    fn send_mail(
        &self,
        Parameters(params): Parameters<SendMailParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let draft = match request::draft(params) {
            Ok(draft) => draft,
            Err(message) => return Ok(failure(message)),
        };
        let mut outbox = self.outbox.lock().map_err(|_| poisoned_lock("outbox"))?;
        let message = match outbox.queue(self.mailbox.owner(), draft, Utc::now()) {
            Ok(message) => message,
            Err(err) => {
                tracing::error!(error = %err, "failed to queue a message");
                return Ok(failure(format!("could not queue the message: {err}")));
            }
        };
        tracing::debug!(id = %message.id, "message queued");

        let text = format!("queued message {} to {}", message.id, message.to);
        success(text, &message)
    }
}

#[tool_handler(
    router = self.tool_router,
    name = "bulkhead-app-mail",
    instructions = "Gives access to the user's email. search_mail and read_mail read the inbox. \
                    send_mail sends a message to someone else and cannot be undone."
)]
impl ServerHandler for MailServer {}
