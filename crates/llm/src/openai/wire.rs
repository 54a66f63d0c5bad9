//! The chat-completions wire format: the request body, and lenient parsing of the response.
//!
//! Servers differ in small ways. Some send tool-call arguments as a JSON string (OpenAI, vLLM),
//! others as an object (Ollama); some leave out the call id. The parser accepts both forms and
//! generates a missing id, and rejects only what cannot be read as a reply.

use serde_json::{json, Map, Value};

use crate::{ChatReply, ChatRequest, Message, Role, ToolCall};

/// Builds the JSON body of a chat-completions request.
pub fn request_body(model: &str, request: &ChatRequest) -> Value {
    let messages: Vec<Value> = request.messages.iter().map(message_json).collect();
    let mut body = json!({ "model": model, "messages": messages });
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    }
                })
            })
            .collect();
        body["tools"] = Value::from(tools);
    }
    if let Some(max_tokens) = request.max_tokens {
        body["max_tokens"] = Value::from(max_tokens);
    }
    body
}

fn message_json(message: &Message) -> Value {
    let mut object = Map::new();
    object.insert("role".into(), Value::from(message.role.as_str()));
    object.insert("content".into(), Value::from(message.content.as_str()));
    if message.role == Role::Assistant && !message.tool_calls.is_empty() {
        let calls: Vec<Value> = message
            .tool_calls
            .iter()
            .map(|call| {
                json!({
                    "id": call.id,
                    "type": "function",
                    "function": { "name": call.name, "arguments": call.arguments.to_string() },
                })
            })
            .collect();
        object.insert("tool_calls".into(), Value::from(calls));
    }
    if let Some(id) = &message.tool_call_id {
        object.insert("tool_call_id".into(), Value::from(id.as_str()));
    }
    Value::Object(object)
}

/// Parses a chat-completions response body into the first choice's reply.
pub fn parse_reply(body: &str) -> Result<ChatReply, String> {
    let value: Value =
        serde_json::from_str(body).map_err(|error| format!("the body is not JSON: {error}"))?;
    let message = value
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|choices| choices.first())
        .and_then(|choice| choice.get("message"))
        .ok_or("the body has no choices[0].message")?;
    let content = match message.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => {
            return Err(format!(
                "message.content is {other}, expected a string or null"
            ))
        }
    };
    let tool_calls = match message.get("tool_calls") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(calls)) => calls
            .iter()
            .enumerate()
            .map(|(index, call)| parse_call(index, call))
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("message.tool_calls is {other}, expected an array")),
    };
    Ok(ChatReply {
        content,
        tool_calls,
    })
}

fn parse_call(index: usize, call: &Value) -> Result<ToolCall, String> {
    let function = call.get("function").unwrap_or(call);
    let name = function
        .get("name")
        .and_then(Value::as_str)
        .filter(|name| !name.is_empty())
        .ok_or_else(|| format!("tool_calls[{index}] has no function name"))?;
    let arguments = parse_arguments(function.get("arguments"))
        .map_err(|reason| format!("tool_calls[{index}] ({name}): {reason}"))?;
    let id = match call.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => format!("call_{}", uuid::Uuid::new_v4().simple()),
    };
    Ok(ToolCall {
        id,
        name: name.to_string(),
        arguments,
    })
}

/// Reads tool-call arguments given as a JSON object, as a string that contains one, or left out.
fn parse_arguments(arguments: Option<&Value>) -> Result<Value, String> {
    let value = match arguments {
        None | Some(Value::Null) => return Ok(Value::Object(Map::new())),
        Some(Value::String(text)) if text.trim().is_empty() => {
            return Ok(Value::Object(Map::new()))
        }
        Some(Value::String(text)) => serde_json::from_str(text)
            .map_err(|error| format!("arguments are not valid JSON ({error}): {text}"))?,
        Some(other) => other.clone(),
    };
    if !value.is_object() {
        return Err(format!("arguments must be a JSON object, not {value}"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ToolSpec;

    fn reply(body: Value) -> Result<ChatReply, String> {
        parse_reply(&body.to_string())
    }

    #[test]
    fn text_reply() {
        let parsed =
            reply(json!({"choices": [{"message": {"role": "assistant", "content": "hello"}}]}))
                .expect("reply");
        assert_eq!(parsed.content, "hello");
        assert!(parsed.tool_calls.is_empty());
    }

    #[test]
    fn arguments_as_string_and_as_object() {
        let body = json!({"choices": [{"message": {"content": null, "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "estimate", "arguments": "{\"start\": \"x\"}"}},
            {"id": "b", "type": "function", "function": {"name": "estimate", "arguments": {"start": "y"}}},
        ]}}]});
        let parsed = reply(body).expect("reply");
        assert_eq!(parsed.content, "");
        assert_eq!(parsed.tool_calls[0].arguments, json!({"start": "x"}));
        assert_eq!(parsed.tool_calls[1].arguments, json!({"start": "y"}));
        assert_eq!(parsed.tool_calls[1].id, "b");
    }

    #[test]
    fn missing_id_and_arguments_are_filled_in() {
        let body = json!({"choices": [{"message": {"tool_calls": [
            {"function": {"name": "list_notes"}},
            {"function": {"name": "list_notes", "arguments": ""}},
        ]}}]});
        let parsed = reply(body).expect("reply");
        assert!(
            parsed.tool_calls[0].id.starts_with("call_"),
            "{:?}",
            parsed.tool_calls[0]
        );
        assert_ne!(parsed.tool_calls[0].id, parsed.tool_calls[1].id);
        assert_eq!(parsed.tool_calls[0].arguments, json!({}));
        assert_eq!(parsed.tool_calls[1].arguments, json!({}));
    }

    #[test]
    fn broken_arguments_are_rejected_with_the_text() {
        let body = json!({"choices": [{"message": {"tool_calls": [{"function": {"name": "f", "arguments": "{oops"}}]}}]});
        let error = reply(body).expect_err("invalid arguments");
        assert!(error.contains("tool_calls[0] (f)"), "{error}");
        assert!(error.contains("{oops"), "{error}");
        let body = json!({"choices": [{"message": {"tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}]}}]});
        assert!(reply(body)
            .expect_err("array")
            .contains("must be a JSON object"));
    }

    #[test]
    fn body_without_choices_is_rejected() {
        assert!(reply(json!({"error": "x"}))
            .expect_err("no choices")
            .contains("choices[0].message"));
        assert!(parse_reply("<html>")
            .expect_err("not JSON")
            .contains("not JSON"));
    }

    #[test]
    fn request_body_carries_tools_and_tool_messages() {
        let call = ToolCall {
            id: "c1".into(),
            name: "estimate".into(),
            arguments: json!({"a": 1}),
        };
        let request = ChatRequest {
            messages: vec![
                Message::user("price it"),
                Message::assistant(&ChatReply {
                    content: String::new(),
                    tool_calls: vec![call],
                }),
                Message::tool_result("c1", "57.0"),
            ],
            tools: vec![ToolSpec {
                name: "estimate".into(),
                description: "Fares.".into(),
                parameters: json!({"type": "object"}),
            }],
            max_tokens: None,
        };
        let body = request_body("m", &request);
        assert_eq!(body["model"], "m");
        assert_eq!(body["tools"][0]["function"]["name"], "estimate");
        assert_eq!(
            body["messages"][1]["tool_calls"][0]["function"]["arguments"],
            "{\"a\":1}"
        );
        assert_eq!(body["messages"][2]["tool_call_id"], "c1");
        assert_eq!(body["messages"][2]["role"], "tool");
        assert!(body.get("max_tokens").is_none());
    }

    #[test]
    fn request_body_carries_max_tokens() {
        let request = ChatRequest {
            messages: vec![Message::user("write a haiku")],
            tools: Vec::new(),
            max_tokens: Some(64),
        };
        let body = request_body("m", &request);
        assert_eq!(body["max_tokens"], 64);
        assert!(body.get("tools").is_none());
    }
}
