//! The `geo` payload index of a sealed segment: stored points on a 2^32 x 2^32 grid over (lon, lat),
//! sorted by their Z-order (Morton) code, so that every grid cell of any level (a geohash-like
//! square) is one contiguous run of the sorted list.
//!
//! A geo condition is first turned into one or two lon/lat boxes that contain every point it can
//! accept (a circle's bounding box, widened near the poles and split at the antimeridian; a
//! polygon's exterior bounding box). The boxes are covered by at most [`MAX_CELLS`] cells of the
//! finest level that allows it, and the points of those cells are the candidates: a superset that
//! the filter check refines exactly.

use grape_types::filter::{FieldCondition, GeoPoint};

/// Cells a query box may be covered with: more cells hug the box tighter but cost a binary search each.
const MAX_CELLS: u64 = 64;

/// Mean Earth radius the filter's haversine distance uses (metres).
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Padding in degrees added to every query box, so rounding in the exact checks never reaches past it.
const PAD_DEG: f64 = 1e-9;

#[derive(Debug, Default)]
pub struct GeoIndex {
    /// (Morton code, offset), sorted; a point with several locations appears once per location.
    cells: Vec<(u64, u32)>,
}

/// A closed lon/lat box (no antimeridian crossing: `lon.0 <= lon.1`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct LonLatBox {
    lon: (f64, f64),
    lat: (f64, f64),
}

fn quantize(x: f64, low: f64, span: f64) -> u32 {
    // Monotonic in x, so a point inside a box is inside the box's quantized range.
    let q = ((x - low) / span * 4_294_967_296.0).floor();
    q.clamp(0.0, f64::from(u32::MAX)) as u32
}

fn spread(x: u32) -> u64 {
    let mut v = u64::from(x);
    v = (v | (v << 16)) & 0x0000_FFFF_0000_FFFF;
    v = (v | (v << 8)) & 0x00FF_00FF_00FF_00FF;
    v = (v | (v << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    v = (v | (v << 2)) & 0x3333_3333_3333_3333;
    (v | (v << 1)) & 0x5555_5555_5555_5555
}

/// Z-order code: bit i of the longitude cell at 2i, of the latitude cell at 2i + 1.
fn morton(lon: u32, lat: u32) -> u64 {
    spread(lon) | (spread(lat) << 1)
}

fn cell_of(p: &GeoPoint) -> (u32, u32) {
    (quantize(p.lon, -180.0, 360.0), quantize(p.lat, -90.0, 180.0))
}

impl GeoIndex {
    /// Indexes every valid location of every point (offsets in any order).
    pub fn build(points: impl Iterator<Item = (u32, GeoPoint)>) -> Self {
        let mut cells: Vec<(u64, u32)> = points
            .map(|(offset, p)| {
                let (x, y) = cell_of(&p);
                (morton(x, y), offset)
            })
            .collect();
        cells.sort_unstable();
        cells.dedup();
        GeoIndex { cells }
    }

    pub fn ram_bytes(&self) -> usize {
        self.cells.len() * std::mem::size_of::<(u64, u32)>()
    }

    /// Candidates for the geo parts of `f` (the intersection when it has several), or `None` when it
    /// has none.
    pub fn lookup(&self, f: &FieldCondition) -> Option<Vec<u32>> {
        let mut sets = Vec::new();
        if let Some(r) = &f.geo_radius {
            sets.push(self.in_boxes(&radius_boxes(&r.center, r.radius)));
        }
        if let Some(b) = &f.geo_bounding_box {
            let (tl, br) = (&b.top_left, &b.bottom_right);
            let lat = (br.lat, tl.lat);
            let boxes = if tl.lon <= br.lon {
                vec![LonLatBox { lon: (tl.lon, br.lon), lat }]
            } else {
                vec![LonLatBox { lon: (tl.lon, 180.0), lat }, LonLatBox { lon: (-180.0, br.lon), lat }]
            };
            sets.push(self.in_boxes(&boxes));
        }
        if let Some(p) = &f.geo_polygon {
            let ring = &p.exterior.points;
            let fold = |init: f64, pick: fn(&GeoPoint) -> f64, f: fn(f64, f64) -> f64| {
                ring.iter().map(pick).fold(init, f)
            };
            let lon =
                (fold(f64::INFINITY, |p| p.lon, f64::min), fold(f64::NEG_INFINITY, |p| p.lon, f64::max));
            let lat =
                (fold(f64::INFINITY, |p| p.lat, f64::min), fold(f64::NEG_INFINITY, |p| p.lat, f64::max));
            let boxes = if ring.is_empty() { Vec::new() } else { vec![LonLatBox { lon, lat }] };
            sets.push(self.in_boxes(&boxes));
        }
        sets.into_iter().reduce(|a, b| crate::payload_index::intersect(&a, &b))
    }

    /// Sorted, deduplicated offsets of the points in the cells covering `boxes`.
    fn in_boxes(&self, boxes: &[LonLatBox]) -> Vec<u32> {
        let mut found = Vec::new();
        for b in boxes {
            let lon = (b.lon.0 - PAD_DEG, b.lon.1 + PAD_DEG);
            let lat = (b.lat.0 - PAD_DEG, b.lat.1 + PAD_DEG);
            if lon.0 > lon.1 || lat.0 > lat.1 {
                continue;
            }
            let (x0, y0) = cell_of(&GeoPoint { lon: lon.0, lat: lat.0 });
            let (x1, y1) = cell_of(&GeoPoint { lon: lon.1, lat: lat.1 });
            let (x0, y0, x1, y1) = (u64::from(x0), u64::from(y0), u64::from(x1), u64::from(y1));
            // The finest level whose cells covering the box are at most MAX_CELLS (level 0: one cell,
            // the whole grid).
            let level = (0..=32u32)
                .rev()
                .find(|&l| {
                    let shift = 32 - l;
                    ((x1 >> shift) - (x0 >> shift) + 1).saturating_mul((y1 >> shift) - (y0 >> shift) + 1)
                        <= MAX_CELLS
                })
                .unwrap_or(0);
            let shift = 32 - level;
            for cx in (x0 >> shift)..=(x1 >> shift) {
                for cy in (y0 >> shift)..=(y1 >> shift) {
                    // A cell's codes share their top 2 * level bits: one run of the sorted list.
                    let (first, last) = if level == 0 {
                        (0, u64::MAX)
                    } else {
                        let first = morton((cx << shift) as u32, (cy << shift) as u32);
                        (first, first + ((1u64 << (2 * shift)) - 1))
                    };
                    let start = self.cells.partition_point(|(c, _)| *c < first);
                    let end = self.cells.partition_point(|(c, _)| *c <= last);
                    found.extend(self.cells[start..end].iter().map(|(_, o)| *o));
                }
            }
        }
        found.sort_unstable();
        found.dedup();
        found
    }
}

/// Boxes that contain every point within `radius` metres of `center` (great-circle distance).
fn radius_boxes(center: &GeoPoint, radius: f64) -> Vec<LonLatBox> {
    let whole = vec![LonLatBox { lon: (-180.0, 180.0), lat: (-90.0, 90.0) }];
    let angle = radius / EARTH_RADIUS_M * (1.0 + 1e-9) + 1e-12;
    if !angle.is_finite() || angle >= std::f64::consts::PI {
        return whole;
    }
    let dlat = angle.to_degrees();
    let lat = ((center.lat - dlat).max(-90.0), (center.lat + dlat).min(90.0));
    // Near a pole the circle holds every longitude; elsewhere the widest longitude offset on a circle
    // of angular radius `angle` around latitude φ is asin(sin(angle) / cos φ).
    let cos_lat = center.lat.to_radians().cos();
    let ratio = angle.sin() / cos_lat;
    if center.lat - dlat <= -90.0
        || center.lat + dlat >= 90.0
        || ratio.is_nan()
        || ratio >= 1.0
        || angle >= std::f64::consts::FRAC_PI_2
    {
        return vec![LonLatBox { lon: (-180.0, 180.0), lat }];
    }
    let dlon = ratio.asin().to_degrees() * (1.0 + 1e-9) + 1e-9;
    let (west, east) = (center.lon - dlon, center.lon + dlon);
    if west < -180.0 {
        vec![LonLatBox { lon: (-180.0, east), lat }, LonLatBox { lon: (west + 360.0, 180.0), lat }]
    } else if east > 180.0 {
        vec![LonLatBox { lon: (west, 180.0), lat }, LonLatBox { lon: (-180.0, east - 360.0), lat }]
    } else {
        vec![LonLatBox { lon: (west, east), lat }]
    }
}

#[cfg(test)]
mod tests {
    use grape_types::filter::Filter;
    use grape_types::{Payload, PayloadSchemaType, PointId, PointView};
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    use super::*;

    struct P(Payload);

    impl PointView for P {
        fn id(&self) -> PointId {
            PointId::Num(0)
        }
        fn payload(&self) -> Option<&Payload> {
            Some(&self.0)
        }
        fn has_vector(&self, _: &str) -> bool {
            true
        }
    }

    /// Random points (some near the poles and the antimeridian, some invalid, some arrays) and random
    /// geo conditions: the index's candidates always contain every point the filter accepts.
    #[test]
    fn candidates_are_a_superset_of_the_exact_answer() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let point = |rng: &mut rand::rngs::StdRng| match rng.gen_range(0..10) {
            0 => json!({"lon": rng.gen_range(170.0..=180.0), "lat": rng.gen_range(-90.0..=90.0)}),
            1 => json!({"lon": rng.gen_range(-180.0..=180.0), "lat": rng.gen_range(80.0..=90.0)}),
            2 => json!({"lon": 200.0, "lat": 10.0}),
            _ => json!({"lon": rng.gen_range(-180.0..=180.0), "lat": rng.gen_range(-90.0..=90.0)}),
        };
        let payloads: Vec<Payload> = (0..3000)
            .map(|i| {
                let v = if i % 7 == 0 { json!([point(&mut rng), point(&mut rng)]) } else { point(&mut rng) };
                json!({"loc": v}).as_object().cloned().unwrap()
            })
            .collect();
        let index = crate::payload_index::FieldIndex::build(
            PayloadSchemaType::Geo,
            "loc",
            payloads.iter().enumerate().map(|(i, p)| (i as u32, p)),
        );
        for round in 0..300 {
            let (lon, lat) = (rng.gen_range(-180.0..=180.0), rng.gen_range(-90.0..=90.0));
            let condition = match round % 3 {
                0 => json!({"geo_radius": {"center": {"lon": lon, "lat": lat},
                    "radius": 10f64.powf(rng.gen_range(2.0..7.3))}}),
                1 => {
                    let (lon2, lat2): (f64, f64) =
                        (rng.gen_range(-180.0..=180.0), rng.gen_range(-90.0..=lat));
                    json!({"geo_bounding_box": {"top_left": {"lon": lon, "lat": lat},
                        "bottom_right": {"lon": lon2, "lat": lat2}}})
                }
                _ => {
                    let d = rng.gen_range(0.1..40.0);
                    let pts = [
                        (lon - d, lat - d / 2.0),
                        (lon + d, lat),
                        (lon, lat + d / 3.0),
                        (lon - d, lat - d / 2.0),
                    ];
                    let ring: Vec<_> = pts
                        .iter()
                        .map(|(x, y): &(f64, f64)| json!({"lon": x.clamp(-180.0, 180.0), "lat": y.clamp(-90.0, 90.0)}))
                        .collect();
                    json!({"geo_polygon": {"exterior": {"points": ring}}})
                }
            };
            let mut c = condition.as_object().cloned().unwrap();
            c.insert("key".into(), json!("loc"));
            let filter: Filter = serde_json::from_value(json!({"must": [c]})).unwrap();
            let grape_types::Condition::Field(f) = &filter.must.as_ref().unwrap()[0] else { unreachable!() };
            let candidates = index.lookup_geo(f).expect("a geo index answers geo conditions");
            let exact: Vec<u32> = (0..payloads.len() as u32)
                .filter(|&i| filter.check(&P(payloads[i as usize].clone())))
                .collect();
            for id in &exact {
                assert!(candidates.binary_search(id).is_ok(), "{condition}: point {id} missing");
            }
            // The index narrows: a small circle away from the poles keeps few candidates.
            if let Some(r) = &f.geo_radius {
                if r.radius < 50_000.0 && r.center.lat.abs() < 60.0 {
                    assert!(
                        candidates.len() < payloads.len() / 10,
                        "{condition}: {} candidates",
                        candidates.len()
                    );
                }
            }
        }
    }

    #[test]
    fn cells_cover_boxes_tightly_enough() {
        let index =
            GeoIndex::build((0..1000u32).map(|i| {
                (i, GeoPoint { lon: -180.0 + f64::from(i) * 0.36, lat: -90.0 + f64::from(i) * 0.18 })
            }));
        let small = index.in_boxes(&[LonLatBox { lon: (0.0, 1.0), lat: (0.0, 0.5) }]);
        assert!(small.contains(&500) && small.len() < 20, "{small:?}");
        let all = index.in_boxes(&[LonLatBox { lon: (-180.0, 180.0), lat: (-90.0, 90.0) }]);
        assert_eq!(all.len(), 1000);
    }
}
