//! Builders for MCP tool results: readable text for the model plus structured content for
//! programs.

use rmcp::{
    model::{CallToolResult, ContentBlock},
    ErrorData,
};
use serde::Serialize;

/// Builds a successful result with `text` as its content and `structured` as its structured
/// content.
///
/// `structured` must serialize to a JSON object, because MCP requires structured content to be
/// an object.
pub fn success<T: Serialize>(text: String, structured: &T) -> Result<CallToolResult, ErrorData> {
    let value = serde_json::to_value(structured).map_err(|err| {
        ErrorData::internal_error(format!("failed to encode the tool result: {err}"), None)
    })?;
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(value);
    Ok(result)
}

/// Builds a tool error (`isError: true`) whose text is returned to the caller.
pub fn failure(text: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text.into())])
}

/// Returns the protocol error for a state lock that an earlier panic poisoned.
pub fn poisoned_lock(state_name: &str) -> ErrorData {
    ErrorData::internal_error(
        format!("the {state_name} state is unusable after an earlier panic; restart the app"),
        None,
    )
}
