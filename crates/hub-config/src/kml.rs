//! A shop's serviceable area for channel 90026 (Entrega Expressa) as the KML file Shopee takes
//! (`logistics/upload_serviceable_polygon`): one polygon per active hub, the circle of `delivery.radius_km` around
//! the hub.
//!
//! The circle is approximated by [`CIRCLE_POINTS`] vertices computed on a sphere of radius [`EARTH_RADIUS_KM`]
//! (the destination point at the radius along evenly spaced bearings), so every vertex is at `radius_km` from the
//! hub by great-circle distance (the polygon's edges cut slightly inside the circle: with 64 vertices the area is
//! 99.8 % of the circle's). Each ring starts due north, runs counter-clockwise (KML's orientation for an outer
//! boundary) and ends on its first vertex. Coordinates are `longitude,latitude` with 7 decimals (about 1 cm).
//!
//! The output depends only on the hubs' ids, positions and radii, sorted by hub id: the same hubs always give the
//! same bytes, so a change is detected by comparing the file (its SHA-256) with the last one uploaded.

use std::fmt::Write as _;

use crate::Hub;

/// Vertices per circle (the ring has one more: it closes on the first).
pub const CIRCLE_POINTS: usize = 64;

/// The sphere the circle is computed on (mean Earth radius).
pub const EARTH_RADIUS_KM: f64 = 6371.0;

/// Great-circle distance between two points, in km (haversine, on [`EARTH_RADIUS_KM`]).
pub fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

/// The point `distance_km` from (`lat`, `lon`) along the initial bearing `bearing` (radians, clockwise from north):
/// `(latitude, longitude)` in degrees, longitude in [-180, 180).
pub fn destination(lat: f64, lon: f64, bearing: f64, distance_km: f64) -> (f64, f64) {
    let d = distance_km / EARTH_RADIUS_KM;
    let (p1, l1) = (lat.to_radians(), lon.to_radians());
    let p2 = (p1.sin() * d.cos() + p1.cos() * d.sin() * bearing.cos()).asin();
    let l2 = l1 + (bearing.sin() * d.sin() * p1.cos()).atan2(d.cos() - p1.sin() * p2.sin());
    let lon2 = (l2.to_degrees() + 540.0).rem_euclid(360.0) - 180.0;
    (p2.to_degrees(), lon2)
}

/// The closed ring approximating the circle of `radius_km` around (`lat`, `lon`): `points` vertices
/// counter-clockwise from due north, then the first again. `(longitude, latitude)` pairs.
pub fn circle(lat: f64, lon: f64, radius_km: f64, points: usize) -> Vec<(f64, f64)> {
    let n = points.max(3);
    let mut ring: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            // Counter-clockwise: bearings 0, -step, -2 step, ...
            let bearing = -std::f64::consts::TAU * (i as f64) / (n as f64);
            let (la, lo) = destination(lat, lon, bearing, radius_km);
            (lo, la)
        })
        .collect();
    ring.push(ring[0]);
    ring
}

/// The hubs that get a polygon: active, with a radius above zero.
pub fn serviceable(hubs: &[Hub]) -> Vec<&Hub> {
    let mut out: Vec<&Hub> = hubs.iter().filter(|h| h.active && h.radius_km > 0.0).collect();
    out.sort_by(|a, b| a.hub_id.cmp(&b.hub_id));
    out
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The KML document of `shop_id`'s serviceable area: one `Placemark` (named by hub id) with one `Polygon` per hub
/// of [`serviceable`]. `None` when no hub qualifies (an area with no polygon is never uploaded).
pub fn shop_kml(shop_id: u64, hubs: &[Hub]) -> Option<String> {
    let hubs = serviceable(hubs);
    if hubs.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(hubs.len() * (CIRCLE_POINTS + 1) * 26 + 512);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str("<kml xmlns=\"http://www.opengis.net/kml/2.2\">\n");
    out.push_str("<Document>\n");
    let _ = writeln!(
        out,
        "<name>Entrega Expressa serviceable area, shop {shop_id}</name>"
    );
    for hub in hubs {
        out.push_str("<Placemark>\n");
        let _ = writeln!(out, "<name>{}</name>", escape(&hub.hub_id));
        out.push_str("<Polygon>\n<outerBoundaryIs>\n<LinearRing>\n<coordinates>\n");
        for (lon, lat) in circle(hub.latitude, hub.longitude, hub.radius_km, CIRCLE_POINTS) {
            let _ = writeln!(out, "{lon:.7},{lat:.7}");
        }
        out.push_str("</coordinates>\n</LinearRing>\n</outerBoundaryIs>\n</Polygon>\n");
        out.push_str("</Placemark>\n");
    }
    out.push_str("</Document>\n</kml>\n");
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use domain::Money;

    fn hub(id: &str, active: bool, lat: f64, lon: f64, radius_km: f64) -> Hub {
        Hub {
            hub_id: id.into(),
            active,
            shop_id: 900_001,
            latitude: lat,
            longitude: lon,
            radius_km,
            base_fee: Money::from_centavos(490).unwrap(),
            fee_per_km: Money::from_centavos(110).unwrap(),
            free_above: None,
            preparation_minutes: 8,
            speed_kmh: 18.0,
            opening_hours: Vec::new(),
            zip_ranges: Vec::new(),
            zip_fee: Money::from_centavos(490).unwrap(),
        }
    }

    /// A minimal XML reader, enough to check the document is well formed: elements nest and close in order,
    /// attributes are quoted, text holds no raw `<` or unknown entity. Returns the tree.
    #[derive(Debug)]
    struct Element {
        name: String,
        children: Vec<Element>,
        text: String,
    }

    fn parse_xml(doc: &str) -> Result<Element, String> {
        let mut rest = doc.trim_start();
        if let Some(after) = rest.strip_prefix("<?xml") {
            let end = after.find("?>").ok_or("unterminated declaration")?;
            rest = after[end + 2..].trim_start();
        }
        let mut stack: Vec<Element> = Vec::new();
        let mut root = None;
        while !rest.is_empty() {
            if let Some(tag) = rest.strip_prefix('<') {
                let end = tag.find('>').ok_or("unterminated tag")?;
                let inner = &tag[..end];
                rest = &tag[end + 1..];
                if let Some(name) = inner.strip_prefix('/') {
                    let open = stack.pop().ok_or("close without open")?;
                    if open.name != name.trim() {
                        return Err(format!("</{name}> closes <{}>", open.name));
                    }
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(open),
                        None => root = Some(open),
                    }
                } else {
                    let self_closing = inner.ends_with('/');
                    let inner = inner.trim_end_matches('/');
                    let mut words = inner.splitn(2, char::is_whitespace);
                    let name = words.next().unwrap_or_default().to_owned();
                    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == ':' || c == '_') {
                        return Err(format!("bad element name {name:?}"));
                    }
                    let attrs = words.next().unwrap_or_default();
                    if attrs.matches('"').count() % 2 != 0 {
                        return Err(format!("unbalanced quotes in <{name}>"));
                    }
                    if root.is_some() {
                        return Err("content after the root element".into());
                    }
                    let el = Element {
                        name,
                        children: Vec::new(),
                        text: String::new(),
                    };
                    if self_closing {
                        match stack.last_mut() {
                            Some(parent) => parent.children.push(el),
                            None => root = Some(el),
                        }
                    } else {
                        stack.push(el);
                    }
                }
            } else {
                let end = rest.find('<').unwrap_or(rest.len());
                let text = &rest[..end];
                rest = &rest[end..];
                for (i, _) in text.match_indices('&') {
                    let entity = &text[i..];
                    if !["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                        .iter()
                        .any(|e| entity.starts_with(e))
                    {
                        return Err(format!("unknown entity in {text:?}"));
                    }
                }
                match stack.last_mut() {
                    Some(el) => el.text.push_str(text),
                    None if text.trim().is_empty() => {}
                    None => return Err("text outside the root element".into()),
                }
            }
        }
        if !stack.is_empty() {
            return Err(format!("<{}> never closed", stack[0].name));
        }
        root.ok_or_else(|| "no root element".to_owned())
    }

    fn child<'a>(el: &'a Element, name: &str) -> &'a Element {
        el.children
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("<{}> has no <{name}>", el.name))
    }

    /// (hub id, ring) of every placemark.
    fn polygons(kml: &str) -> Vec<(String, Vec<(f64, f64)>)> {
        let root = parse_xml(kml).expect("well-formed XML");
        assert_eq!(root.name, "kml");
        let doc = child(&root, "Document");
        doc.children
            .iter()
            .filter(|c| c.name == "Placemark")
            .map(|p| {
                let coords = child(
                    child(child(child(p, "Polygon"), "outerBoundaryIs"), "LinearRing"),
                    "coordinates",
                );
                let ring = coords
                    .text
                    .split_whitespace()
                    .map(|t| {
                        let (lon, lat) = t.split_once(',').expect("lon,lat");
                        (lon.parse().unwrap(), lat.parse().unwrap())
                    })
                    .collect();
                (child(p, "name").text.clone(), ring)
            })
            .collect()
    }

    #[test]
    fn every_vertex_is_at_the_radius_by_haversine_and_the_ring_closes() {
        for (lat, lon, r) in [
            (-23.5614, -46.6559, 5.0),
            (-25.4284, -49.2733, 4.0),
            (-3.7319, -38.5267, 0.3),
            (-33.7, -53.4, 25.0),
            (0.0, 179.99, 2.0),
        ] {
            let kml = shop_kml(1, &[hub("H", true, lat, lon, r)]).unwrap();
            let polys = polygons(&kml);
            assert_eq!(polys.len(), 1);
            let ring = &polys[0].1;
            assert_eq!(ring.len(), CIRCLE_POINTS + 1);
            assert_eq!(ring.first(), ring.last(), "closed ring");
            for &(vlon, vlat) in &ring[..CIRCLE_POINTS] {
                let d = haversine_km(lat, lon, vlat, vlon);
                assert!(
                    (d - r).abs() <= r * 0.005,
                    "vertex ({vlat}, {vlon}) is {d} km from the hub, radius {r}"
                );
                assert!((-180.0..=180.0).contains(&vlon) && (-90.0..=90.0).contains(&vlat));
            }
            // Distinct vertices.
            let mut seen: Vec<String> = ring[..CIRCLE_POINTS]
                .iter()
                .map(|p| format!("{:.7},{:.7}", p.0, p.1))
                .collect();
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), CIRCLE_POINTS);
        }
    }

    #[test]
    fn rings_run_counter_clockwise_from_north() {
        let ring = circle(-23.5, -46.6, 5.0, CIRCLE_POINTS);
        assert!(
            ring[0].1 > -23.5 && (ring[0].0 - -46.6).abs() < 1e-9,
            "first vertex due north"
        );
        // Shoelace over (lon, lat): positive = counter-clockwise.
        let area: f64 = ring.windows(2).map(|w| w[0].0 * w[1].1 - w[1].0 * w[0].1).sum();
        assert!(area > 0.0, "{area}");
        assert!(ring[1].0 < -46.6, "the second vertex is west of north");
    }

    #[test]
    fn one_polygon_per_active_hub_sorted_by_id_and_deterministic() {
        let hubs = vec![
            hub("SAO-02", true, -23.60, -46.70, 3.0),
            hub("SAO-01", true, -23.56, -46.65, 5.0),
            hub("SAO-09", false, -23.50, -46.60, 5.0),
            hub("SAO-00", true, -23.50, -46.60, 0.0),
        ];
        let kml = shop_kml(900_001, &hubs).unwrap();
        let names: Vec<String> = polygons(&kml).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["SAO-01", "SAO-02"],
            "inactive and zero-radius hubs get no polygon"
        );
        let mut reversed = hubs.clone();
        reversed.reverse();
        assert_eq!(
            shop_kml(900_001, &reversed).unwrap(),
            kml,
            "order does not matter"
        );
        assert_eq!(shop_kml(900_001, &hubs).unwrap(), kml, "same input, same bytes");
        assert!(kml.starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<kml xmlns=\"http://www.opengis.net/kml/2.2\">"
        ));
        let mut bigger = hubs.clone();
        bigger[1].radius_km = 5.5;
        assert_ne!(
            shop_kml(900_001, &bigger).unwrap(),
            kml,
            "a radius change changes the file"
        );
    }

    #[test]
    fn no_qualifying_hub_means_no_file() {
        assert_eq!(shop_kml(1, &[]), None);
        assert_eq!(shop_kml(1, &[hub("A", false, 0.0, 0.0, 5.0)]), None);
        assert_eq!(shop_kml(1, &[hub("A", true, 0.0, 0.0, 0.0)]), None);
    }

    #[test]
    fn hub_ids_are_escaped() {
        let kml = shop_kml(1, &[hub("A&B<\"x\">", true, -23.5, -46.6, 1.0)]).unwrap();
        let polys = polygons(&kml);
        assert_eq!(polys[0].0, "A&amp;B&lt;&quot;x&quot;&gt;");
        assert!(parse_xml("<kml><a></kml>").is_err());
        assert!(parse_xml("<kml>a & b</kml>").is_err());
    }

    #[test]
    fn haversine_and_destination_agree() {
        // São Paulo -> Rio, about 357 km.
        let d = haversine_km(-23.5505, -46.6333, -22.9068, -43.1729);
        assert!((d - 357.0).abs() < 5.0, "{d}");
        let (lat, lon) = destination(-23.5505, -46.6333, 1.0, 12.5);
        assert!((haversine_km(-23.5505, -46.6333, lat, lon) - 12.5).abs() < 1e-9);
    }
}
