//! An offline backend that needs no model. It replies to a request with a call of the offered tool
//! whose name and description best match the user's text, ranked by BM25, and replies with the
//! tool's result once the conversation contains one.
//!
//! It never writes instructions for other contexts and never calls the virtual tool
//! [`REQUEST_APP_TOOL`], so a plan it makes is one tool call.

mod arguments;

use bm25::{Document, Language, SearchEngineBuilder};

use crate::{ChatBackend, ChatReply, ChatRequest, LlmError, Role, ToolCall};
pub use arguments::{fill_arguments, split_query, SplitQuery};

/// The name of the hub's virtual cross-app tool, which the lexical backend leaves alone.
pub const REQUEST_APP_TOOL: &str = "request_app";

#[derive(Debug, Default)]
pub struct LexicalBackend;

#[async_trait::async_trait]
impl ChatBackend for LexicalBackend {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatReply, LlmError> {
        respond(request)
    }

    fn describe(&self) -> String {
        "lexical".to_string()
    }
}

/// Builds the reply to one request: the tool results given since the last user message, if there
/// are any, and otherwise a call of the best-matching tool.
pub fn respond(request: &ChatRequest) -> Result<ChatReply, LlmError> {
    let last_user = request
        .messages
        .iter()
        .rposition(|message| message.role == Role::User);
    let Some(last_user) = last_user else {
        return Err(cannot_plan("", "the request holds no user message"));
    };
    let results: Vec<&str> = request.messages[last_user..]
        .iter()
        .filter(|message| message.role == Role::Tool)
        .map(|message| message.content.as_str())
        .collect();
    if !results.is_empty() {
        return Ok(ChatReply {
            content: results.join("\n"),
            tool_calls: Vec::new(),
        });
    }

    let query = request.messages[last_user].content.as_str();
    let split = split_query(query);
    let candidates: Vec<_> = request
        .tools
        .iter()
        .filter(|tool| tool.name != REQUEST_APP_TOOL)
        .collect();
    if candidates.is_empty() {
        return Err(cannot_plan(
            query,
            "no app offers a tool; register an app first",
        ));
    }

    let documents = candidates.iter().enumerate().map(|(index, tool)| {
        Document::new(
            index,
            format!(
                "{} {}",
                tool.name.replace(['_', '-'], " "),
                tool.description
            ),
        )
    });
    let engine = SearchEngineBuilder::<usize>::with_documents(Language::English, documents).build();
    let search_text = if split.text.is_empty() {
        query
    } else {
        split.text.as_str()
    };
    let best = engine
        .search(search_text, 1)
        .into_iter()
        .next()
        .filter(|result| result.score > 0.0);
    let Some(best) = best else {
        return Err(cannot_plan(
            query,
            "no tool name or description shares a word with it; name the tool or describe what it does",
        ));
    };

    let tool = candidates[best.document.id];
    let arguments = fill_arguments(&tool.name, &tool.parameters, &split)
        .map_err(|reason| cannot_plan(query, &reason))?;
    let call = ToolCall {
        id: format!("call_{}", uuid::Uuid::new_v4().simple()),
        name: tool.name.clone(),
        arguments,
    };
    Ok(ChatReply {
        content: String::new(),
        tool_calls: vec![call],
    })
}

fn cannot_plan(query: &str, reason: &str) -> LlmError {
    LlmError::CannotPlan {
        query: query.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{Message, ToolSpec};

    fn tools() -> Vec<ToolSpec> {
        let string = |name: &str| json!({"type": "object", "properties": {name: {"type": "string"}}, "required": [name]});
        vec![
            ToolSpec {
                name: "notes__search_notes".into(),
                description: "Finds saved notes whose text contains the query.".into(),
                parameters: string("query"),
            },
            ToolSpec {
                name: "calendar__list_events".into(),
                description: "Lists the calendar events of a day.".into(),
                parameters: string("day"),
            },
            ToolSpec {
                name: REQUEST_APP_TOOL.into(),
                description: "Calls a tool of another app, notes or calendar.".into(),
                parameters: json!({}),
            },
        ]
    }

    fn ask(text: &str) -> Result<ChatReply, LlmError> {
        respond(&ChatRequest {
            messages: vec![Message::system("plan"), Message::user(text)],
            tools: tools(),
            max_tokens: None,
        })
    }

    #[test]
    fn best_tool_is_called_with_the_text() {
        let reply = ask("search my notes about invoices").expect("a plan");
        assert_eq!(reply.tool_calls.len(), 1);
        assert_eq!(reply.tool_calls[0].name, "notes__search_notes");
        assert_eq!(
            reply.tool_calls[0].arguments,
            json!({"query": "search my notes about invoices"})
        );
    }

    #[test]
    fn pairs_fill_arguments_and_text_ranks() {
        let reply = ask("calendar events day=2030-01-15").expect("a plan");
        assert_eq!(reply.tool_calls[0].name, "calendar__list_events");
        assert_eq!(reply.tool_calls[0].arguments, json!({"day": "2030-01-15"}));
    }

    #[test]
    fn unrelated_query_cannot_be_planned() {
        let error = ask("xylophone zebra").expect_err("no match");
        assert!(
            error
                .to_string()
                .contains("cannot plan \"xylophone zebra\""),
            "{error}"
        );
    }

    #[test]
    fn tool_result_becomes_the_answer() {
        let call = ToolCall {
            id: "c".into(),
            name: "notes__search_notes".into(),
            arguments: json!({}),
        };
        let request = ChatRequest {
            messages: vec![
                Message::user("search notes"),
                Message::assistant(&ChatReply {
                    content: String::new(),
                    tool_calls: vec![call],
                }),
                Message::tool_result("c", "note 1: hello"),
            ],
            tools: tools(),
            max_tokens: None,
        };
        let reply = respond(&request).expect("answer");
        assert_eq!(reply.content, "note 1: hello");
        assert!(reply.tool_calls.is_empty());
    }

    #[test]
    fn no_tools_is_a_plain_error() {
        let request = ChatRequest {
            messages: vec![Message::user("anything")],
            tools: Vec::new(),
            max_tokens: None,
        };
        let error = respond(&request).expect_err("no tools");
        assert!(error.to_string().contains("register an app"), "{error}");
    }
}
