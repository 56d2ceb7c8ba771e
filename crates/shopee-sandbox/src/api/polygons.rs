//! Channel 90026 (Entrega Expressa) serviceable area: `upload_serviceable_polygon` (shop, multipart, the KML file in
//! the part `file`) answers a `task_id`; `check_polygon_update_status` answers that task's `status` with the
//! documented values (0 task completed, 1 task in progress, 2 KML file related errors).
//!
//! Sandbox choices (the documentation does not say how Shopee recognizes a KML file, its size limit, nor how long a
//! task runs):
//! - a KML file is recognized by its bytes (UTF-8 XML whose root element is `kml`), not by its file name; anything
//!   else is `error_param` "File type is not .kml type"; an empty part is `error_data` "File cannot be opened"; more
//!   than 10 MB is `error_param` "File size exceeds max allowable size.";
//! - the shop's area is the latest file uploaded (as the Entrega Expressa guide says), kept whatever its task ends;
//! - a task answers 1 at its first check and its final state from the second on: 2 when the file has no polygon or
//!   a ring that is not a closed list of at least 4 `lon,lat[,alt]` tuples within range, else 0;
//! - an unknown task id (or another shop's) is `error_server` "Error Details : task not found".

use serde_json::json;

use super::{Ctx, Out, ok};
use crate::args::Args;
use crate::error::{ApiError, ApiResult};
use crate::state::{Inner, PolygonTask};

/// The largest KML file the sandbox takes (a sandbox choice: Shopee documents a limit without its value).
pub(crate) const MAX_KML_BYTES: usize = 10 * 1024 * 1024;

/// Whether `data` is a KML document: UTF-8 XML whose first element is `<kml`.
pub(crate) fn is_kml(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let mut rest = text.trim_start_matches('\u{feff}').trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("<?") {
            let Some(end) = after.find("?>") else {
                return false;
            };
            rest = after[end + 2..].trim_start();
        } else if let Some(after) = rest.strip_prefix("<!--") {
            let Some(end) = after.find("-->") else {
                return false;
            };
            rest = after[end + 3..].trim_start();
        } else {
            break;
        }
    }
    rest.strip_prefix("<kml")
        .and_then(|r| r.chars().next())
        .is_some_and(|c| c == '>' || c == '/' || c.is_whitespace())
}

/// Why the KML's polygons are unusable, if they are: none at all, or a ring that is not a closed list of at least
/// 4 in-range `lon,lat[,alt]` tuples.
pub(crate) fn kml_problem(text: &str) -> Option<String> {
    let mut rings = 0;
    let mut rest = text;
    while let Some(start) = rest.find("<coordinates>") {
        let after = &rest[start + "<coordinates>".len()..];
        let Some(end) = after.find("</coordinates>") else {
            return Some("a coordinates element is not closed".into());
        };
        let mut points = Vec::new();
        for tuple in after[..end].split_whitespace() {
            let mut parts = tuple.split(',').map(str::parse::<f64>);
            match (parts.next(), parts.next()) {
                (Some(Ok(lon)), Some(Ok(lat)))
                    if (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat) =>
                {
                    points.push((lon, lat));
                }
                _ => return Some(format!("{tuple:?} is not a longitude,latitude pair in range")),
            }
        }
        if points.len() < 4 {
            return Some(format!("a ring has {} points (at least 4)", points.len()));
        }
        if points.first() != points.last() {
            return Some("a ring does not end on its first point".into());
        }
        rings += 1;
        rest = &after[end..];
    }
    (rings == 0).then(|| "the file has no polygon".to_owned())
}

pub(super) fn upload_serviceable_polygon(inner: &mut Inner, ctx: &Ctx, _args: &Args) -> ApiResult<Out> {
    let Some(parts) = ctx.form else {
        return Err(ApiError::param(
            "upload_serviceable_polygon takes a multipart/form-data body with the KML file in the field file.",
        ));
    };
    let file = parts
        .iter()
        .find(|p| p.name == "file")
        .ok_or_else(|| ApiError::param("There is no file in the request (multipart field file)."))?;
    if file.data.is_empty() {
        return Err(ApiError::business("error_data", "File cannot be opened"));
    }
    if file.data.len() > MAX_KML_BYTES {
        return Err(ApiError::param("File size exceeds max allowable size."));
    }
    if !is_kml(&file.data) {
        return Err(ApiError::param("File type is not .kml type"));
    }
    let kml = String::from_utf8_lossy(&file.data).into_owned();
    let problem = kml_problem(&kml);
    let task_id = inner.new_polygon_task_id();
    inner.polygon_tasks.insert(
        task_id.clone(),
        PolygonTask {
            shop_id: ctx.shop_id,
            checks: 0,
            problem,
        },
    );
    inner.polygons.insert(ctx.shop_id, kml);
    ok(json!({"task_id": task_id}))
}

pub(super) fn check_polygon_update_status(inner: &mut Inner, ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let task_id = args.req_str("task_id")?;
    let task = inner
        .polygon_tasks
        .get_mut(task_id)
        .filter(|t| t.shop_id == ctx.shop_id)
        .ok_or_else(|| ApiError::business("error_server", "Error Details : task not found"))?;
    task.checks += 1;
    let (status, message) = match (&task.problem, task.checks) {
        (_, 1) => (1, "task in progress".to_owned()),
        (None, _) => (0, "task completed".to_owned()),
        (Some(problem), _) => (2, format!("KML file error: {problem}")),
    };
    ok(json!({"status": status, "message": message}))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RING: &str = "<coordinates>-46.6,-23.5 -46.7,-23.6 -46.5,-23.6 -46.6,-23.5</coordinates>";

    #[test]
    fn kml_is_recognized_by_its_bytes() {
        assert!(is_kml(
            b"<?xml version=\"1.0\"?>\n<kml xmlns=\"http://www.opengis.net/kml/2.2\"></kml>"
        ));
        assert!(is_kml("\u{feff}<!-- x --><kml>".as_bytes()));
        assert!(!is_kml(b"<kmlx>"));
        assert!(!is_kml(b"\x89PNG\r\n\x1a\n"));
        assert!(!is_kml(b"{\"type\": \"FeatureCollection\"}"));
        assert!(!is_kml(b"<?xml version=\"1.0\"?><gpx></gpx>"));
    }

    #[test]
    fn rings_are_checked() {
        assert_eq!(kml_problem(&format!("<kml>{RING}{RING}</kml>")), None);
        assert!(kml_problem("<kml></kml>").unwrap().contains("no polygon"));
        assert!(
            kml_problem(
                "<kml><coordinates>-46.6,-23.5 -46.7,-23.6 -46.5,-23.6 -46.6,-23.4</coordinates></kml>"
            )
            .unwrap()
            .contains("first point")
        );
        assert!(
            kml_problem(
                "<kml><coordinates>-23.5,-46.6 -23.6,-200 -23.6,-46.5 -23.5,-46.6</coordinates></kml>"
            )
            .is_some()
        );
        assert!(
            kml_problem("<kml><coordinates>1,1 2,2 1,1</coordinates></kml>")
                .unwrap()
                .contains("3 points")
        );
    }
}
