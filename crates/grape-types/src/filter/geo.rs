//! Geo shapes of payload filters (radius, bounding box, polygon) on the globe, and their checks.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GeoPoint {
    pub lon: f64,
    pub lat: f64,
}

impl GeoPoint {
    /// A geo point stored in a payload: `{lon, lat}` on the globe.
    pub fn from_value(v: &Value) -> Option<GeoPoint> {
        let o = v.as_object()?;
        let (lon, lat) = (o.get("lon")?.as_f64()?, o.get("lat")?.as_f64()?);
        ((-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat)).then_some(GeoPoint { lon, lat })
    }

    /// Great-circle distance in metres (haversine, mean Earth radius).
    pub fn distance_m(&self, other: &GeoPoint) -> f64 {
        const EARTH_RADIUS_M: f64 = 6_371_008.8;
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let (dp, dl) = (p2 - p1, (other.lon - self.lon).to_radians());
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GeoRadius {
    pub center: GeoPoint,
    /// Metres.
    pub radius: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GeoBoundingBox {
    pub top_left: GeoPoint,
    pub bottom_right: GeoPoint,
}

impl GeoBoundingBox {
    pub(crate) fn contains(&self, p: &GeoPoint) -> bool {
        let lat_ok = p.lat <= self.top_left.lat && p.lat >= self.bottom_right.lat;
        let lon_ok = if self.top_left.lon <= self.bottom_right.lon {
            p.lon >= self.top_left.lon && p.lon <= self.bottom_right.lon
        } else {
            // The box crosses the antimeridian.
            p.lon >= self.top_left.lon || p.lon <= self.bottom_right.lon
        };
        lat_ok && lon_ok
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GeoLineString {
    pub points: Vec<GeoPoint>,
}

impl GeoLineString {
    /// Even-odd rule on the (lon, lat) plane.
    pub(crate) fn contains(&self, p: &GeoPoint) -> bool {
        let pts = &self.points;
        let mut inside = false;
        for i in 0..pts.len() {
            let (a, b) = (pts[i], pts[(i + 1) % pts.len()]);
            if (a.lat > p.lat) != (b.lat > p.lat)
                && p.lon < (b.lon - a.lon) * (p.lat - a.lat) / (b.lat - a.lat) + a.lon
            {
                inside = !inside;
            }
        }
        inside
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GeoPolygon {
    pub exterior: GeoLineString,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interiors: Option<Vec<GeoLineString>>,
}

impl GeoPolygon {
    pub(crate) fn contains(&self, p: &GeoPoint) -> bool {
        self.exterior.contains(p) && !self.interiors.iter().flatten().any(|hole| hole.contains(p))
    }
}

pub(crate) fn check_point(key: &str, p: &GeoPoint) -> Result<(), String> {
    if (-180.0..=180.0).contains(&p.lon) && (-90.0..=90.0).contains(&p.lat) {
        Ok(())
    } else {
        Err(format!("{key}: ({}, {}) is not a valid lon/lat", p.lon, p.lat))
    }
}

pub(crate) fn check_ring(key: &str, ring: &GeoLineString) -> Result<(), String> {
    ring.points.iter().try_for_each(|p| check_point(key, p))?;
    if ring.points.len() < 4 || ring.points.first() != ring.points.last() {
        return Err(format!("{key}: a polygon ring needs at least 4 points and must end where it starts"));
    }
    Ok(())
}
