//! The app's sampling/createMessage requests, which the runtime forwards to the hub on the ask
//! channel because the spoke has no network and no API key.
// MCP sampling is deprecated in the 2026-07-28 protocol revision, and rmcp 3.11 marks its types so.
// The runtime still serves it for apps written against earlier revisions.
#![allow(deprecated)]

use bulkhead_proto::v1::ask_answer::Answer;
use bulkhead_proto::v1::spoke_ask::Ask;
use bulkhead_proto::v1::{AskFailure, SamplingAsk, SamplingContent, SamplingMessage};
use rmcp::model::{
    CreateMessageRequestParams, CreateMessageResult, Role, SamplingMessageContentBlock, SamplingMessage as McpMessage,
};
use rmcp::ErrorData as McpError;

use crate::asks::Asks;

/// Forwards one sampling request to the hub and turns its answer into the MCP result.
pub async fn create_message(asks: &Asks, params: CreateMessageRequestParams) -> Result<CreateMessageResult, McpError> {
    if params.tools.as_ref().is_some_and(|tools| !tools.is_empty()) || params.tool_choice.is_some() {
        return Err(McpError::invalid_params(
            "bulkhead does not offer tools in sampling requests; send the request without tools or toolChoice",
            None,
        ));
    }
    let ask = SamplingAsk {
        messages: params.messages.into_iter().map(to_proto).collect(),
        system_prompt: params.system_prompt.unwrap_or_default(),
        max_tokens: params.max_tokens,
    };
    tracing::info!(messages = ask.messages.len(), "the app sent sampling/createMessage; asking the hub");
    let answer = asks.ask(Ask::Sampling(ask)).await.map_err(|error| {
        tracing::warn!("sampling request failed: {error}");
        McpError::internal_error(format!("sampling failed: {error}"), None)
    })?;
    match answer {
        Answer::Sampling(reply) => {
            // No stopReason: the chat backends do not report why the model stopped.
            let message = McpMessage::new(Role::Assistant, SamplingMessageContentBlock::text(reply.text));
            Ok(CreateMessageResult::new(message, reply.model))
        }
        Answer::Rejected(rejected) => {
            let failure = AskFailure::try_from(rejected.failure).unwrap_or(AskFailure::Unspecified);
            tracing::warn!(failure = failure.as_str_name(), "the hub rejected the sampling request: {}", rejected.message);
            let message = format!("sampling failed: {}", rejected.message);
            Err(match failure {
                AskFailure::Invalid => McpError::invalid_params(message, None),
                _ => McpError::internal_error(message, None),
            })
        }
    }
}

/// Converts one MCP message. Only text travels: the hub rejects every other content type by name,
/// so the runtime sends the type alone.
fn to_proto(message: McpMessage) -> SamplingMessage {
    let role = match message.role {
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    let content = message
        .content
        .into_vec()
        .into_iter()
        .map(|block| match block {
            SamplingMessageContentBlock::Text(text) => SamplingContent { r#type: "text".into(), text: text.text },
            other => SamplingContent { r#type: content_type(&other).into(), text: String::new() },
        })
        .collect();
    SamplingMessage { role: role.into(), content }
}

fn content_type(block: &SamplingMessageContentBlock) -> &'static str {
    match block {
        SamplingMessageContentBlock::Text(_) => "text",
        SamplingMessageContentBlock::Image(_) => "image",
        SamplingMessageContentBlock::Audio(_) => "audio",
        SamplingMessageContentBlock::ToolUse(_) => "tool_use",
        SamplingMessageContentBlock::ToolResult(_) => "tool_result",
        _ => "unknown",
    }
}
