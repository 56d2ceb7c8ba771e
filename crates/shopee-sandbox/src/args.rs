//! Request parameters, read the same way from a GET query or a POST JSON body.
//!
//! GET values are strings (lists comma-separated or repeated); POST values are JSON. The getters accept both, so a
//! handler reads `args.req_u64("item_id")` whatever the method. A wrong type or a missing required field is
//! `error_param`, as Shopee answers.

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

pub struct Args<'a> {
    map: &'a Map<String, Value>,
    /// For nested objects: where we are (e.g. `item_list[3]`), used in messages.
    at: String,
}

impl<'a> Args<'a> {
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Self {
            map,
            at: String::new(),
        }
    }

    /// Reads a nested object (an element of a list).
    pub fn nested(value: &'a Value, at: String) -> ApiResult<Self> {
        match value {
            Value::Object(map) => Ok(Self { map, at }),
            _ => Err(ApiError::param(format!("{at} must be an object"))),
        }
    }

    fn name(&self, key: &str) -> String {
        if self.at.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.at)
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.get(key).is_some_and(|v| !v.is_null())
    }

    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub fn opt_u64(&self, key: &str) -> ApiResult<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| ApiError::param(format!("{} must be a non-negative integer", self.name(key)))),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => {
                s.trim().parse().map(Some).map_err(|_| {
                    ApiError::param(format!("{} must be a non-negative integer", self.name(key)))
                })
            }
            Some(_) => Err(ApiError::param(format!("{} must be an integer", self.name(key)))),
        }
    }

    pub fn req_u64(&self, key: &str) -> ApiResult<u64> {
        self.opt_u64(key)?
            .ok_or_else(|| ApiError::param(format!("{} is required", self.name(key))))
    }

    pub fn opt_i64(&self, key: &str) -> ApiResult<Option<i64>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| ApiError::param(format!("{} must be an integer", self.name(key)))),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ApiError::param(format!("{} must be an integer", self.name(key)))),
            Some(_) => Err(ApiError::param(format!("{} must be an integer", self.name(key)))),
        }
    }

    pub fn req_i64(&self, key: &str) -> ApiResult<i64> {
        self.opt_i64(key)?
            .ok_or_else(|| ApiError::param(format!("{} is required", self.name(key))))
    }

    pub fn opt_f64(&self, key: &str) -> ApiResult<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ApiError::param(format!("{} must be a number", self.name(key)))),
            Some(_) => Err(ApiError::param(format!("{} must be a number", self.name(key)))),
        }
    }

    pub fn opt_str(&self, key: &str) -> ApiResult<Option<&'a str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(ApiError::param(format!("{} must be a string", self.name(key)))),
        }
    }

    pub fn req_str(&self, key: &str) -> ApiResult<&'a str> {
        match self.opt_str(key)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(ApiError::param(format!("{} is required", self.name(key)))),
        }
    }

    /// A list of strings: a JSON array or a comma-separated string.
    pub fn str_list(&self, key: &str) -> ApiResult<Vec<String>> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()),
            Some(Value::Array(values)) => values
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    _ => Err(ApiError::param(format!(
                        "{} must be a list of strings",
                        self.name(key)
                    ))),
                })
                .collect(),
            Some(_) => Err(ApiError::param(format!("{} must be a list", self.name(key)))),
        }
    }

    /// A list of integers: a JSON array or a comma-separated string.
    pub fn u64_list(&self, key: &str) -> ApiResult<Vec<u64>> {
        self.str_list(key)?
            .iter()
            .map(|s| {
                s.parse()
                    .map_err(|_| ApiError::param(format!("{} must be a list of integers", self.name(key))))
            })
            .collect()
    }

    /// A JSON array of objects (POST bodies only); absent = empty.
    pub fn objects(&self, key: &str) -> ApiResult<Vec<Args<'a>>> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(values)) => values
                .iter()
                .enumerate()
                .map(|(i, v)| Args::nested(v, format!("{}[{i}]", self.name(key))))
                .collect(),
            Some(_) => Err(ApiError::param(format!("{} must be a list", self.name(key)))),
        }
    }

    pub fn opt_object(&self, key: &str) -> ApiResult<Option<Args<'a>>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => Args::nested(v, self.name(key)).map(Some),
        }
    }
}
