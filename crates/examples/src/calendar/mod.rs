//! The calendar app: creates events and lists them by day, stored in the state directory.

mod book;
mod request;
mod when;

use std::path::Path;
use std::sync::{Arc, Mutex};

use rmcp::{
    handler::server::{router::tool::ToolRouter, tool::schema_for_output, wrapper::Parameters},
    model::CallToolResult,
    tool, tool_handler, tool_router, ErrorData, ServerHandler,
};
use schemars::JsonSchema;
use serde::Serialize;

pub use book::{Calendar, DayRange, Event, NewEvent, EVENTS_FILE};
pub use request::{CreateEventParams, ListEventsParams};
pub use when::{format_time, parse_date, parse_start, START_FORMATS};

use crate::store::StoreError;
use crate::tool_result::{failure, poisoned_lock, success};

/// Structured result of `list_events`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EventList {
    /// Matching events, sorted by start time.
    pub events: Vec<Event>,
}

/// MCP server for the calendar app.
#[derive(Debug, Clone)]
pub struct CalendarServer {
    calendar: Arc<Mutex<Calendar>>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl CalendarServer {
    /// Opens the calendar stored in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        let calendar = Calendar::open(state_dir)?;
        tracing::info!(events = calendar.len(), "calendar loaded");
        Ok(Self {
            calendar: Arc::new(Mutex::new(calendar)),
            tool_router: Self::tool_router(),
        })
    }

    #[tool(
        description = "Lists calendar events sorted by start time, optionally only those that \
                       start between two days (YYYY-MM-DD, both included). Each event has an id, \
                       title, start and end (RFC 3339), duration in minutes and attendees.",
        annotations(title = "List events", read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<EventList>()
    )]
    fn list_events(
        &self,
        Parameters(params): Parameters<ListEventsParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let range = match request::day_range(&params) {
            Ok(range) => range,
            Err(message) => return Ok(failure(message)),
        };
        let calendar = self
            .calendar
            .lock()
            .map_err(|_| poisoned_lock("calendar"))?;
        let events: Vec<Event> = calendar.list(range).into_iter().cloned().collect();
        tracing::debug!(events = events.len(), "events listed");

        let text = if events.is_empty() {
            "no events".to_owned()
        } else {
            events.iter().map(event_line).collect::<Vec<_>>().join("\n")
        };
        success(text, &EventList { events })
    }

    #[tool(
        description = "Creates a calendar event with a title, a start time, a duration \
                       (60 minutes unless given) and optional attendees, and returns the event \
                       with its new id. The start is RFC 3339 such as 2025-06-02T09:30:00+02:00, \
                       or \"YYYY-MM-DD HH:MM\" in UTC.",
        annotations(
            title = "Create event",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<Event>()
    )]
    fn create_event(
        &self,
        Parameters(params): Parameters<CreateEventParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let new = match request::new_event(params) {
            Ok(new) => new,
            Err(message) => return Ok(failure(message)),
        };
        let mut calendar = self
            .calendar
            .lock()
            .map_err(|_| poisoned_lock("calendar"))?;
        let event = match calendar.create(new) {
            Ok(event) => event.clone(),
            Err(err) => {
                tracing::error!(error = %err, "failed to save an event");
                return Ok(failure(format!("could not save the event: {err}")));
            }
        };
        tracing::debug!(id = event.id, "event created");

        let text = format!("created event {}", event_line(&event));
        success(text, &event)
    }
}

#[tool_handler(
    router = self.tool_router,
    name = "bulkhead-app-calendar",
    instructions = "Keeps the user's calendar in private storage. create_event adds an event and \
                    list_events lists events by day."
)]
impl ServerHandler for CalendarServer {}

/// Formats an event as one line, e.g.
/// `3: Dentist, 2025-06-02T09:30:00+02:00 to 2025-06-02T10:00:00+02:00 (30 minutes) with alice`.
fn event_line(event: &Event) -> String {
    let mut line = format!(
        "{}: {}, {} to {} ({} minutes)",
        event.id,
        event.title,
        format_time(&event.start),
        format_time(&event.end),
        event.duration_minutes
    );
    if !event.attendees.is_empty() {
        line.push_str(" with ");
        line.push_str(&event.attendees.join(", "));
    }
    line
}
