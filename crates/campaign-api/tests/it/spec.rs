//! The OpenAPI document as a test oracle: every request the tests send and every answer they get through
//! [`crate::common::Api::call_with`] is checked against `/openapi.json` (the document the app serves, built from the
//! same code). A 2xx answer means the request was accepted, so its body must match the documented request schema;
//! every answer must have a documented status and match its documented schema.

use std::sync::OnceLock;

use jsonschema::Validator;
use reqwest::Method;
use serde_json::{Value, json};

/// The served document.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_value(campaign_api::openapi::document()).expect("the document is JSON"))
}

/// The documented path template a concrete path falls under (literal segments beat parameters).
pub fn template_of(path: &str) -> Option<&'static str> {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    let mut best: Option<(&'static str, usize)> = None;
    for template in document()["paths"].as_object()?.keys() {
        let parts: Vec<&str> = template.split('/').collect();
        if parts.len() != segments.len() {
            continue;
        }
        let fits = parts
            .iter()
            .zip(&segments)
            .all(|(p, s)| p.starts_with('{') || p == s);
        let literal = parts.iter().filter(|p| !p.starts_with('{')).count();
        if fits && best.is_none_or(|(_, l)| literal > l) {
            best = Some((template.as_str(), literal));
        }
    }
    best.map(|(t, _)| t)
}

/// A validator of `schema` (which may `$ref` the document's components).
pub fn validator(schema: &Value) -> Validator {
    let mut root = schema.clone();
    if let Some(obj) = root.as_object_mut() {
        obj.insert("components".into(), document()["components"].clone());
    } else {
        // `true` / `false` schemas.
        root = json!({"allOf": [schema], "components": document()["components"]});
    }
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&root)
        .unwrap_or_else(|e| panic!("not a valid schema ({e}): {schema}"))
}

/// Whether `instance` matches `schema`; the errors when not.
pub fn check_schema(schema: &Value, instance: &Value) -> Result<(), Vec<String>> {
    let v = validator(schema);
    let errors: Vec<String> = v
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// The documented operation of a method and concrete path, if any.
pub fn operation(method: &Method, path: &str) -> Option<&'static Value> {
    let template = template_of(path)?;
    let op = &document()["paths"][template][method.as_str().to_lowercase()];
    op.is_object().then_some(op)
}

/// The JSON schema of an operation's request body.
pub fn request_schema(op: &Value) -> Option<&Value> {
    let s = &op["requestBody"]["content"]["application/json"]["schema"];
    (!s.is_null()).then_some(s)
}

/// Checks one exchange; panics with what does not match. Routes the document does not describe are left alone
/// (the tests that call them expect a 404 / 405).
pub fn check_exchange(method: &Method, path: &str, request: Option<&Value>, status: u16, answer: &Value) {
    let Some(op) = operation(method, path) else {
        return;
    };
    if (200..300).contains(&status)
        && let (Some(body), Some(schema)) = (request, request_schema(op))
        && let Err(errors) = check_schema(schema, body)
    {
        panic!(
            "{method} {path} was accepted ({status}) but its body breaks the documented schema: {errors:?}\n{body}"
        );
    }
    let response = &op["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "{method} {path} answered {status}, which /openapi.json does not document: {answer}"
    );
    let schema = &response["content"]["application/json"]["schema"];
    if !schema.is_null()
        && let Err(errors) = check_schema(schema, answer)
    {
        panic!("{method} {path} answered {status} outside its documented schema: {errors:?}\n{answer}");
    }
}
