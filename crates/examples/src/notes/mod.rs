//! The notes app: saves, lists and searches short text notes in the state directory.

mod book;

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use rmcp::{
    handler::server::{router::tool::ToolRouter, tool::schema_for_output, wrapper::Parameters},
    model::CallToolResult,
    tool, tool_handler, tool_router, ErrorData, ServerHandler,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use book::{Note, NoteBook, NOTES_FILE};

use crate::store::StoreError;
use crate::tool_result::{failure, poisoned_lock, success};
use crate::validate::{max_len, single_line};

/// Maximum length of a note title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

/// Maximum size of a note body, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Arguments of `add_note`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AddNoteParams {
    /// One-line title of the note, at most 200 characters.
    pub title: String,
    /// Text of the note, at most 64 KiB.
    pub body: String,
}

/// Arguments of `search_notes`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchNotesParams {
    /// Text to find in note titles and bodies, ignoring case. An empty query matches all notes.
    pub query: String,
}

/// Structured result of `add_note`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AddedNote {
    /// Id of the new note.
    pub id: u64,
    /// Title as stored, without surrounding whitespace.
    pub title: String,
    /// Creation time, RFC 3339 in UTC.
    pub created_at: String,
}

/// A note without its body, as `list_notes` returns it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct NoteSummary {
    /// Note id.
    pub id: u64,
    /// One-line title.
    pub title: String,
    /// Creation time, RFC 3339 in UTC.
    pub created_at: String,
}

/// Structured result of `list_notes`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct NoteList {
    /// Every note, oldest first.
    pub notes: Vec<NoteSummary>,
}

/// Structured result of `search_notes`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct NoteMatches {
    /// Matching notes with their bodies, oldest first.
    pub notes: Vec<Note>,
}

/// MCP server for the notes app.
#[derive(Debug, Clone)]
pub struct NotesServer {
    book: Arc<Mutex<NoteBook>>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl NotesServer {
    /// Opens the notes stored in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        let book = NoteBook::open(state_dir)?;
        tracing::info!(notes = book.notes().len(), "notes loaded");
        Ok(Self {
            book: Arc::new(Mutex::new(book)),
            tool_router: Self::tool_router(),
        })
    }

    #[tool(
        description = "Saves a new text note with a title and a body in the user's private notes \
                       and returns the id of the new note.",
        annotations(
            title = "Add note",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<AddedNote>()
    )]
    fn add_note(
        &self,
        Parameters(params): Parameters<AddNoteParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let title = params.title.trim();
        if let Err(message) = single_line("title", title, MAX_TITLE_CHARS)
            .and_then(|()| max_len("body", &params.body, MAX_BODY_BYTES))
        {
            return Ok(failure(message));
        }

        let mut book = self.book.lock().map_err(|_| poisoned_lock("notes"))?;
        let note = match book.add(title.to_owned(), params.body, Utc::now()) {
            Ok(note) => note,
            Err(err) => {
                tracing::error!(error = %err, "failed to save a note");
                return Ok(failure(format!("could not save the note: {err}")));
            }
        };
        tracing::debug!(id = note.id, "note added");

        let added = AddedNote {
            id: note.id,
            title: note.title.clone(),
            created_at: note.created_at.clone(),
        };
        success(format!("added note {}: {}", added.id, added.title), &added)
    }

    #[tool(
        description = "Lists every saved note with its id, title and creation time (RFC 3339, \
                       UTC), oldest first. Bodies are left out; search_notes returns them.",
        annotations(title = "List notes", read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<NoteList>()
    )]
    fn list_notes(&self) -> Result<CallToolResult, ErrorData> {
        let book = self.book.lock().map_err(|_| poisoned_lock("notes"))?;
        let notes: Vec<NoteSummary> = book
            .notes()
            .iter()
            .map(|note| NoteSummary {
                id: note.id,
                title: note.title.clone(),
                created_at: note.created_at.clone(),
            })
            .collect();

        let text = if notes.is_empty() {
            "no notes yet".to_owned()
        } else {
            notes
                .iter()
                .map(|note| heading_line(note.id, &note.title, &note.created_at))
                .collect::<Vec<_>>()
                .join("\n")
        };
        success(text, &NoteList { notes })
    }

    #[tool(
        description = "Finds saved notes whose title or body contains the query text, ignoring \
                       case, and returns them with their full bodies. An empty query returns \
                       every note.",
        annotations(title = "Search notes", read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<NoteMatches>()
    )]
    fn search_notes(
        &self,
        Parameters(params): Parameters<SearchNotesParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let book = self.book.lock().map_err(|_| poisoned_lock("notes"))?;
        let notes: Vec<Note> = book.search(&params.query).into_iter().cloned().collect();
        tracing::debug!(matches = notes.len(), "notes searched");

        let text = if notes.is_empty() {
            format!("no notes match {:?}", params.query)
        } else {
            notes
                .iter()
                .map(|note| {
                    let heading = heading_line(note.id, &note.title, &note.created_at);
                    format!("{heading}\n{}", note.body)
                })
                .collect::<Vec<_>>()
                .join("\n\n")
        };
        success(text, &NoteMatches { notes })
    }
}

#[tool_handler(
    router = self.tool_router,
    name = "bulkhead-app-notes",
    instructions = "Keeps short text notes in private storage. add_note saves one, list_notes \
                    lists them and search_notes finds them by text."
)]
impl ServerHandler for NotesServer {}

fn heading_line(id: u64, title: &str, created_at: &str) -> String {
    format!("{id}. {title} (created {created_at})")
}
