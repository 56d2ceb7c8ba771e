//! Shopee Open Platform v2's published API documentation, as data, and the checks that hold our client and our
//! sandbox to it.
//!
//! `contract/v2.<module>.json` holds, for every API of the modules this project calls, what Shopee's own API
//! documentation states: path, method, signature level, request parameters and response fields with Shopee's type
//! names, Shopee's samples and error names. The files are copied unchanged from the public mirror of Shopee's
//! API-doc JSON named in `contract/SOURCE.md` (commit in [`Contract::source_commit`]).
//!
//! Neither the client nor the sandbox is the reference: both are checked against this.
//! - [`Api::check_query`], [`Api::check_body`], [`Api::check_form`]: a request's keys exist in the documentation,
//!   in the right place, at a fitting type, and every required parameter is there.
//! - [`Api::check_response`]: an answer's fields have their documented types (unknown fields reported on demand).
//! - [`Api::synthesize_response`]: an answer with every documented field present at its documented type.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::{Map, Value};

/// The modules copied into `contract/`.
const MODULES: &[&str] = &[
    include_str!("../contract/v2.public.json"),
    include_str!("../contract/v2.push.json"),
    include_str!("../contract/v2.shop.json"),
    include_str!("../contract/v2.order.json"),
    include_str!("../contract/v2.logistics.json"),
    include_str!("../contract/v2.product.json"),
    include_str!("../contract/v2.discount.json"),
    include_str!("../contract/v2.media_space.json"),
];

/// Query parameters every call carries besides its own (the signature's common parameters).
pub const COMMON_QUERY_PARAMS: &[&str] = &["partner_id", "timestamp", "sign", "access_token", "shop_id"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
}

/// Which signature base string applies: partner only, partner + shop, partner + merchant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Auth {
    Public,
    Shop,
    Merchant,
}

/// One documented parameter or answer field.
#[derive(Debug, Clone, Deserialize)]
pub struct Field {
    pub name: String,
    /// Shopee's type name: `string`, `int32`, `int64`, `float`, `boolean`, `timestamp`, `object`, `object[]`, ...
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub fields: Vec<Field>,
}

impl Field {
    pub fn kind(&self) -> Kind {
        Kind::parse(&self.ty)
    }
}

/// One API as Shopee documents it.
#[derive(Debug, Clone, Deserialize)]
pub struct Api {
    pub path: String,
    pub method: Method,
    pub auth: Auth,
    #[serde(default)]
    pub request: Vec<Field>,
    #[serde(default)]
    pub response: Vec<Field>,
    #[serde(default)]
    pub request_sample: Option<Value>,
    #[serde(default)]
    pub response_sample: Option<Value>,
    #[serde(default)]
    pub error_codes: Vec<String>,
}

#[derive(Deserialize)]
struct ModuleFile {
    source_commit: String,
    apis: BTreeMap<String, Api>,
}

/// Every documented API of the copied modules, by path.
pub struct Contract {
    by_path: BTreeMap<String, Api>,
    source_commit: String,
}

static CONTRACT: LazyLock<Contract> = LazyLock::new(|| {
    let mut by_path = BTreeMap::new();
    let mut source_commit = String::new();
    for text in MODULES {
        // The files are part of this crate; a broken one is a build defect caught by this crate's own tests.
        let module: ModuleFile = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => panic!("shopee-contract: a contract file does not parse: {e}"),
        };
        source_commit = module.source_commit;
        for api in module.apis.into_values() {
            by_path.insert(api.path.clone(), api);
        }
    }
    apply_errata(&mut by_path);
    Contract {
        by_path,
        source_commit,
    }
});

/// Where the extracted field lists contradict Shopee's own sample for the same API, the sample wins. Each erratum
/// is listed here and in docs/shopee-contract.md, and a test holds it to the sample.
///
/// - `product/get_item_base_info`: `complaint_policy`, `tax_info`, `description_info`, `description_type` and
///   `stock_info_v2` are listed beside `item_list`, but Shopee's sample (and every SDK) has them inside each item.
pub const ERRATA: &[(&str, &str, &[&str])] = &[(
    "/api/v2/product/get_item_base_info",
    "item_list",
    &[
        "complaint_policy",
        "tax_info",
        "description_info",
        "description_type",
        "stock_info_v2",
    ],
)];

fn apply_errata(by_path: &mut BTreeMap<String, Api>) {
    for (path, into, names) in ERRATA {
        let Some(api) = by_path.get_mut(*path) else {
            continue;
        };
        let Some(response) = api.response.iter_mut().find(|f| f.name == "response") else {
            continue;
        };
        let (moved, kept): (Vec<Field>, Vec<Field>) = std::mem::take(&mut response.fields)
            .into_iter()
            .partition(|f| names.contains(&f.name.as_str()));
        response.fields = kept;
        if let Some(target) = response.fields.iter_mut().find(|f| f.name == *into) {
            target.fields.extend(moved);
        }
    }
}

/// The contract (parsed once).
pub fn contract() -> &'static Contract {
    &CONTRACT
}

impl Contract {
    pub fn api(&self, path: &str) -> Option<&Api> {
        self.by_path.get(path)
    }

    pub fn apis(&self) -> impl Iterator<Item = &Api> {
        self.by_path.values()
    }

    /// The commit of the mirror the files were copied from.
    pub fn source_commit(&self) -> &str {
        &self.source_commit
    }
}

/// A documented type, reduced to what JSON and a query string can tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    String,
    Integer,
    Float,
    Boolean,
    Object,
    File,
    /// A type name this crate does not know: anything fits.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub scalar: Scalar,
    pub array: bool,
}

impl Kind {
    pub fn parse(ty: &str) -> Self {
        let (base, array) = match ty.strip_suffix("[]") {
            Some(b) => (b, true),
            None => (ty, false),
        };
        let scalar = match base {
            "string" => Scalar::String,
            "int" | "int32" | "int64" | "uint32" | "uint64" | "timestamp" => Scalar::Integer,
            "float" | "double" => Scalar::Float,
            "boolean" | "bool" => Scalar::Boolean,
            "object" => Scalar::Object,
            "file" => Scalar::File,
            _ => Scalar::Unknown,
        };
        Kind { scalar, array }
    }
}

/// One way a request or an answer departs from the documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where: `query.item_status`, `body.price_list[0].model_id`, `response.item_list[1].weight`.
    pub at: String,
    pub problem: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.problem)
    }
}

/// How strictly an answer is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// Only documented fields may appear (our sandbox: it follows Shopee).
    DocumentedOnly,
    /// Undocumented fields are tolerated (what a client must do with Shopee's answers).
    TolerateUnknown,
}

impl Api {
    fn param(&self, name: &str) -> Option<&Field> {
        self.request.iter().find(|f| f.name == name)
    }

    /// A GET request's query pairs. The common signature parameters are skipped unless the API documents them too.
    /// A parameter documented as an array (`int64[]`, `string[]`) is sent as a repeated key, one value each; any
    /// other parameter appears once.
    pub fn check_query(&self, pairs: &[(String, String)]) -> Vec<Violation> {
        let mut out = Vec::new();
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (key, value) in pairs {
            let at = format!("query.{key}");
            let Some(field) = self.param(key) else {
                if !COMMON_QUERY_PARAMS.contains(&key.as_str()) {
                    out.push(violation(&at, "not a documented parameter of this API"));
                }
                continue;
            };
            *seen.entry(field.name.as_str()).or_default() += 1;
            let kind = field.kind();
            if kind.array && value.contains(',') {
                out.push(violation(
                    &at,
                    &format!(
                        "{value:?} joins values with commas; an array ({}) is sent as repeated keys",
                        field.ty
                    ),
                ));
            }
            if let Some(problem) = text_misfit(kind.scalar, value) {
                out.push(violation(&at, &format!("{problem} (documented as {})", field.ty)));
            }
        }
        for (name, count) in &seen {
            if let Some(f) = self.param(name)
                && *count > 1
                && !f.kind().array
            {
                out.push(violation(
                    &format!("query.{name}"),
                    &format!("sent {count} times, but documented as a single {}", f.ty),
                ));
            }
        }
        for f in self.request.iter().filter(|f| f.required) {
            if !seen.contains_key(f.name.as_str()) && !COMMON_QUERY_PARAMS.contains(&f.name.as_str()) {
                out.push(violation(
                    &format!("query.{}", f.name),
                    "required parameter missing",
                ));
            }
        }
        out
    }

    /// A POST request's JSON body: documented keys only, fitting types, required parameters present (at every
    /// level of an object that is present).
    pub fn check_body(&self, body: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        match body {
            Value::Object(map) => check_object(&self.request, map, "body", Direction::Request, &mut out),
            other => out.push(violation(
                "body",
                &format!("expected a JSON object, got {}", json_kind(other)),
            )),
        }
        out
    }

    /// A `multipart/form-data` request: the parts' names and whether each carries a file.
    pub fn check_form(&self, parts: &[(String, bool)]) -> Vec<Violation> {
        let mut out = Vec::new();
        for (name, is_file) in parts {
            let at = format!("form.{name}");
            match self.param(name) {
                None => out.push(violation(&at, "not a documented parameter of this API")),
                Some(f) if (f.kind().scalar == Scalar::File) != *is_file => out.push(violation(
                    &at,
                    &format!(
                        "documented as {}, sent {}",
                        f.ty,
                        if *is_file { "a file" } else { "as text" }
                    ),
                )),
                Some(_) => {}
            }
        }
        for f in self.request.iter().filter(|f| f.required) {
            if !parts.iter().any(|(n, _)| n == &f.name) {
                out.push(violation(
                    &format!("form.{}", f.name),
                    "required parameter missing",
                ));
            }
        }
        out
    }

    /// Whether the API takes a file (and so a `multipart/form-data` body).
    pub fn takes_file(&self) -> bool {
        self.request.iter().any(|f| f.kind().scalar == Scalar::File)
    }

    /// A whole answer (the envelope: `request_id`, `error`, ..., `response{...}`, or the top-level fields of the
    /// auth APIs) against the documented response fields.
    pub fn check_response(&self, answer: &Value, strictness: Strictness) -> Vec<Violation> {
        let mut out = Vec::new();
        match answer {
            Value::Object(map) => check_object(
                &self.response,
                map,
                "answer",
                Direction::Response(strictness),
                &mut out,
            ),
            other => out.push(violation(
                "answer",
                &format!("expected a JSON object, got {}", json_kind(other)),
            )),
        }
        out
    }

    /// A successful answer with every documented field present at its documented type (arrays with one element).
    pub fn synthesize_response(&self) -> Value {
        let mut answer = synthesize_object(&self.response);
        if let Value::Object(map) = &mut answer {
            for key in ["error", "message", "warning"] {
                if map.get(key).is_some_and(Value::is_string) {
                    map.insert(key.to_owned(), Value::String(String::new()));
                }
            }
        }
        answer
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Request,
    Response(Strictness),
}

fn violation(at: &str, problem: &str) -> Violation {
    Violation {
        at: at.to_owned(),
        problem: problem.to_owned(),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a float",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn check_object(
    fields: &[Field],
    map: &Map<String, Value>,
    at: &str,
    dir: Direction,
    out: &mut Vec<Violation>,
) {
    for (key, value) in map {
        let here = format!("{at}.{key}");
        match fields.iter().find(|f| &f.name == key) {
            Some(f) => check_value(f, value, &here, dir, out),
            None => {
                let flag = match dir {
                    Direction::Request => true,
                    Direction::Response(s) => s == Strictness::DocumentedOnly,
                };
                if flag {
                    out.push(violation(&here, "not a documented field of this API"));
                }
            }
        }
    }
    if dir == Direction::Request {
        for f in fields.iter().filter(|f| f.required) {
            if !map.contains_key(&f.name) {
                out.push(violation(
                    &format!("{at}.{}", f.name),
                    "required parameter missing",
                ));
            }
        }
    }
}

fn check_value(field: &Field, value: &Value, at: &str, dir: Direction, out: &mut Vec<Violation>) {
    let kind = field.kind();
    if kind.array {
        let Value::Array(items) = value else {
            out.push(violation(
                at,
                &format!("documented as {}, got {}", field.ty, json_kind(value)),
            ));
            return;
        };
        for (i, item) in items.iter().enumerate() {
            check_scalar(field, kind.scalar, item, &format!("{at}[{i}]"), dir, out);
        }
    } else {
        check_scalar(field, kind.scalar, value, at, dir, out);
    }
}

fn check_scalar(
    field: &Field,
    scalar: Scalar,
    value: &Value,
    at: &str,
    dir: Direction,
    out: &mut Vec<Violation>,
) {
    let fits = match (scalar, value) {
        (Scalar::Unknown, _) => true,
        // A file in an answer (a document download) comes as data, never as a JSON structure.
        (Scalar::String | Scalar::File, Value::String(_)) => true,
        (Scalar::Integer, Value::Number(n)) => n.is_i64() || n.is_u64(),
        (Scalar::Float, Value::Number(_)) => true,
        (Scalar::Boolean, Value::Bool(_)) => true,
        // `object[]` with no documented fields is how the documentation marks an array of unspecified elements
        // (e.g. `update_item` `image.image_id_list`, whose elements are image id strings): anything fits.
        (Scalar::Object, _) if field.fields.is_empty() => true,
        (Scalar::Object, Value::Object(map)) => {
            if !field.fields.is_empty() {
                check_object(&field.fields, map, at, dir, out);
            }
            true
        }
        _ => false,
    };
    if !fits {
        out.push(violation(
            at,
            &format!("documented as {}, got {}", field.ty, json_kind(value)),
        ));
    }
}

/// Why a query value does not read as the documented type, if it does not.
fn text_misfit(scalar: Scalar, text: &str) -> Option<String> {
    let ok = match scalar {
        Scalar::String | Scalar::Unknown => true,
        Scalar::Integer => text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok(),
        Scalar::Float => text.parse::<f64>().is_ok(),
        Scalar::Boolean => text == "true" || text == "false",
        Scalar::Object => serde_json::from_str::<Map<String, Value>>(text).is_ok(),
        Scalar::File => false,
    };
    (!ok).then(|| format!("{text:?} does not read as {scalar:?}"))
}

fn synthesize_object(fields: &[Field]) -> Value {
    Value::Object(
        fields
            .iter()
            .map(|f| (f.name.clone(), synthesize_field(f)))
            .collect(),
    )
}

fn synthesize_field(f: &Field) -> Value {
    let kind = f.kind();
    let one = match kind.scalar {
        // Upper-case letters and digits: a value any identifier (order_sn, package_number) accepts.
        Scalar::String | Scalar::Unknown | Scalar::File => {
            Value::String(format!("{}1", f.name.replace('_', "").to_ascii_uppercase()))
        }
        Scalar::Integer => Value::from(1_u64),
        Scalar::Float => Value::from(1.5_f64),
        Scalar::Boolean => Value::Bool(true),
        Scalar::Object => synthesize_object(&f.fields),
    };
    if kind.array { Value::Array(vec![one]) } else { one }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn api(path: &str) -> &'static Api {
        contract().api(path).unwrap()
    }

    #[test]
    fn every_file_parses_and_names_its_commit() {
        assert!(contract().apis().count() > 150);
        assert_eq!(contract().source_commit().len(), 40);
        for text in MODULES {
            let m: ModuleFile = serde_json::from_str(text).unwrap();
            assert_eq!(m.source_commit, contract().source_commit());
        }
    }

    #[test]
    fn errata_agree_with_shopees_samples() {
        let base = api("/api/v2/product/get_item_base_info");
        let sample = base.response_sample.as_ref().unwrap();
        let undocumented: Vec<Violation> = base
            .check_response(sample, Strictness::DocumentedOnly)
            .into_iter()
            .filter(|v| v.problem.contains("not a documented field"))
            .collect();
        let moved: Vec<&str> = ERRATA[0].2.to_vec();
        assert!(
            undocumented
                .iter()
                .all(|v| !moved.iter().any(|m| v.at.ends_with(m))),
            "{undocumented:?}"
        );
        let items = &base
            .response
            .iter()
            .find(|f| f.name == "response")
            .unwrap()
            .fields[0];
        assert!(items.fields.iter().any(|f| f.name == "stock_info_v2"));
    }

    #[test]
    fn array_params_in_a_query_are_repeated_keys() {
        let list = api("/api/v2/product/get_item_list");
        let ok = [
            ("offset", "0"),
            ("page_size", "100"),
            ("item_status", "NORMAL"),
            ("item_status", "UNLIST"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(list.check_query(&ok), vec![]);
        let comma = [
            ("offset", "0"),
            ("page_size", "100"),
            ("item_status", "NORMAL,UNLIST"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(list.check_query(&comma).len(), 1);
        let base = api("/api/v2/product/get_item_base_info");
        let joined = [("item_id_list", "1,2")].map(|(k, v)| (k.to_owned(), v.to_owned()));
        // Joined with commas, and not an int64 either.
        assert_eq!(base.check_query(&joined).len(), 2);
    }

    #[test]
    fn query_checks_names_types_and_required() {
        let list = api("/api/v2/order/get_order_list");
        let q =
            [("time_from", "x"), ("bogus", "1"), ("sign", "abc")].map(|(k, v)| (k.to_owned(), v.to_owned()));
        let v: Vec<String> = list.check_query(&q).iter().map(|v| v.at.clone()).collect();
        assert!(v.contains(&"query.time_from".to_owned()));
        assert!(v.contains(&"query.bogus".to_owned()));
        assert!(v.contains(&"query.time_range_field".to_owned()));
        assert!(!v.contains(&"query.sign".to_owned()));
    }

    #[test]
    fn body_checks_nested_types_unknown_keys_and_required() {
        let up = api("/api/v2/product/update_price");
        assert_eq!(
            up.check_body(&json!({"item_id": 1, "price_list": [{"model_id": 0, "original_price": 12.9}]})),
            vec![]
        );
        let bad = up.check_body(&json!({"item_id": "1", "price_list": [{"model_id": 0, "price": 1}]}));
        let at: Vec<&str> = bad.iter().map(|v| v.at.as_str()).collect();
        assert!(at.contains(&"body.item_id"), "{bad:?}");
        assert!(at.contains(&"body.price_list[0].price"), "{bad:?}");
        assert!(at.contains(&"body.price_list[0].original_price"), "{bad:?}");
    }

    #[test]
    fn synthetic_answers_validate_strictly_for_every_api() {
        for a in contract().apis() {
            let synthetic = a.synthesize_response();
            assert_eq!(
                a.check_response(&synthetic, Strictness::DocumentedOnly),
                vec![],
                "{}",
                a.path
            );
        }
    }

    #[test]
    fn answers_with_wrong_types_are_reported() {
        let base = api("/api/v2/product/get_item_base_info");
        let answer = json!({"request_id": "r", "error": "", "response": {"item_list": [{"item_id": 1, "weight": 1.5}]}});
        let v = base.check_response(&answer, Strictness::TolerateUnknown);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].at, "answer.response.item_list[0].weight");
        let extra = json!({"request_id": "r", "response": {"surprise": 1}});
        assert!(
            base.check_response(&extra, Strictness::TolerateUnknown)
                .is_empty()
        );
        assert_eq!(base.check_response(&extra, Strictness::DocumentedOnly).len(), 1);
    }

    #[test]
    fn form_parts_must_be_documented_and_files_where_files_are() {
        let up = api("/api/v2/media_space/upload_image");
        assert!(up.takes_file());
        assert_eq!(up.check_form(&[("image".to_owned(), true)]), vec![]);
        assert_eq!(up.check_form(&[("file".to_owned(), true)]).len(), 2);
        assert_eq!(up.check_form(&[("image".to_owned(), false)]).len(), 1);
    }
}
