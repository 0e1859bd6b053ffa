use proptest::prelude::*;
use serde_json::{json, Value};

use super::{normalize, parse, print};
use crate::filter::{
    Bound, Condition, DatetimeBound, FieldCondition, GeoBoundingBox, GeoLineString, GeoPoint, GeoPolygon,
    GeoRadius, KeyRef, Match, MatchValue, MinShould, Nested, Range,
};
use crate::{Filter, PointId};

fn json_of(expr: &str) -> Value {
    let f = parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    serde_json::to_value(f).unwrap()
}

fn field(key: &str, m: Value) -> Value {
    let mut o = json!({"key": key});
    o.as_object_mut().unwrap().extend(m.as_object().unwrap().clone());
    o
}

#[test]
fn expressions_map_to_qdrant_filters() {
    let uuid = "550e8400-e29b-41d4-a716-446655440000";
    let has_id = format!(r#"has_id(1, 2, "{uuid}")"#);
    let must = |c: Value| json!({"must": [c]});
    let cases: Vec<(&str, Value)> = vec![
        (r#"city = "Paris""#, must(field("city", json!({"match": {"value": "Paris"}})))),
        ("n == 5", must(field("n", json!({"match": {"value": 5}})))),
        ("flag = true", must(field("flag", json!({"match": {"value": true}})))),
        ("n = -7", must(field("n", json!({"match": {"value": -7}})))),
        (r#"city != "Paris""#, must(field("city", json!({"match": {"except": ["Paris"]}})))),
        ("price < 100", must(field("price", json!({"range": {"lt": 100.0}})))),
        ("price >= 1.5e2", must(field("price", json!({"range": {"gte": 150.0}})))),
        (
            r#"at > "2023-02-08T10:49:00Z""#,
            must(field("at", json!({"range": {"gt": "2023-02-08T10:49:00Z"}}))),
        ),
        (r#"tags IN ["sale", "new"]"#, must(field("tags", json!({"match": {"any": ["sale", "new"]}})))),
        ("n NOT IN [1, 2]", must(field("n", json!({"match": {"except": [1, 2]}})))),
        ("n IN []", must(field("n", json!({"match": {"any": []}})))),
        ("price BETWEEN 10 AND 20", must(field("price", json!({"range": {"gte": 10.0, "lte": 20.0}})))),
        ("range(price, > 1, <= 5)", must(field("price", json!({"range": {"gt": 1.0, "lte": 5.0}})))),
        (r#"name MATCHES "good""#, must(field("name", json!({"match": {"text": "good"}})))),
        (r#"text_contains(name, "good")"#, must(field("name", json!({"match": {"text": "good"}})))),
        (
            r#"text_any(name, "good cheap")"#,
            must(field("name", json!({"match": {"text_any": "good cheap"}}))),
        ),
        (r#"PHRASE(name, "good cheap")"#, must(field("name", json!({"match": {"phrase": "good cheap"}})))),
        ("is_empty(reviews)", json!({"must": [{"is_empty": {"key": "reviews"}}]})),
        ("is_null(reviews)", json!({"must": [{"is_null": {"key": "reviews"}}]})),
        (&*has_id, json!({"must": [{"has_id": [1, 2, uuid]}]})),
        (r#"has_vector("image")"#, json!({"must": [{"has_vector": "image"}]})),
        ("values_count(tags) >= 2", must(field("tags", json!({"values_count": {"gte": 2.0}})))),
        (
            "values_count(tags) BETWEEN 1 AND 3",
            must(field("tags", json!({"values_count": {"gte": 1.0, "lte": 3.0}}))),
        ),
        (
            "geo_radius(location, 48.85, 2.35, 5km)",
            must(field(
                "location",
                json!({"geo_radius": {"center": {"lon": 2.35, "lat": 48.85}, "radius": 5000.0}}),
            )),
        ),
        (
            "geo_radius(location, 0, 0, 300m)",
            must(field(
                "location",
                json!({"geo_radius": {"center": {"lon": 0.0, "lat": 0.0}, "radius": 300.0}}),
            )),
        ),
        (
            "geo_box(location, 49, 2, 48, 3)",
            must(field(
                "location",
                json!({"geo_bounding_box": {"top_left": {"lon": 2.0, "lat": 49.0},
                                            "bottom_right": {"lon": 3.0, "lat": 48.0}}}),
            )),
        ),
        (
            "geo_polygon(loc, [(48, 2), (48, 3), (49, 3), (48, 2)])",
            must(field(
                "loc",
                json!({"geo_polygon": {"exterior": {"points": [{"lon": 2.0, "lat": 48.0},
                    {"lon": 3.0, "lat": 48.0}, {"lon": 3.0, "lat": 49.0}, {"lon": 2.0, "lat": 48.0}]}}}),
            )),
        ),
        (
            r#"nested(country.cities, name = "Lyon" AND pop > 400)"#,
            json!({"must": [{"nested": {"key": "country.cities", "filter": {"must": [
                {"key": "name", "match": {"value": "Lyon"}}, {"key": "pop", "range": {"gt": 400.0}}]}}}]}),
        ),
        (
            r#"city = "Paris" AND (price < 100 OR tags IN ["sale", "new"]) AND geo_radius(location, 48.85, 2.35, 5km) AND NOT is_empty(reviews)"#,
            json!({
                "must": [
                    {"key": "city", "match": {"value": "Paris"}},
                    {"key": "location", "geo_radius": {"center": {"lon": 2.35, "lat": 48.85}, "radius": 5000.0}}
                ],
                "should": [
                    {"key": "price", "range": {"lt": 100.0}},
                    {"key": "tags", "match": {"any": ["sale", "new"]}}
                ],
                "must_not": [{"is_empty": {"key": "reviews"}}]
            }),
        ),
        (
            "a = 1 OR b = 2 AND c = 3",
            json!({"should": [field("a", json!({"match": {"value": 1}})), {"must": [
                field("b", json!({"match": {"value": 2}})), field("c", json!({"match": {"value": 3}}))]}]}),
        ),
        ("NOT a = 1", json!({"must_not": [field("a", json!({"match": {"value": 1}}))]})),
        (
            "a = 1 and not b = 2",
            json!({"must": [field("a", json!({"match": {"value": 1}}))],
                   "must_not": [field("b", json!({"match": {"value": 2}}))]}),
        ),
        (
            "NOT (a = 1 OR b = 2)",
            json!({"must_not": [{"should": [field("a", json!({"match": {"value": 1}})),
                                            field("b", json!({"match": {"value": 2}}))]}]}),
        ),
        (
            "a = 1 AND (b = 2 AND c = 3)",
            json!({"must": [field("a", json!({"match": {"value": 1}})), {"must": [
                field("b", json!({"match": {"value": 2}})), field("c", json!({"match": {"value": 3}}))]}]}),
        ),
        (
            "(a = 1 OR b = 2) AND (c = 3 OR d = 4)",
            json!({"must": [{"should": [field("a", json!({"match": {"value": 1}})),
                                        field("b", json!({"match": {"value": 2}}))]}],
                   "should": [field("c", json!({"match": {"value": 3}})), field("d", json!({"match": {"value": 4}}))]}),
        ),
        (
            "min_should(2, a = 1, b = 2, c = 3)",
            json!({"min_should": {"conditions": [field("a", json!({"match": {"value": 1}})),
                field("b", json!({"match": {"value": 2}})), field("c", json!({"match": {"value": 3}}))],
                "min_count": 2}}),
        ),
        (
            r#"country.cities[].name = "Nice" AND tags[0] = "a""#,
            json!({"must": [field("country.cities[].name", json!({"match": {"value": "Nice"}})),
                            field("tags[0]", json!({"match": {"value": "a"}}))]}),
        ),
        (
            "`my key` = 1 AND `and` = 2 AND `a``b` = 3",
            json!({"must": [field("my key", json!({"match": {"value": 1}})),
                field("and", json!({"match": {"value": 2}})), field("a`b", json!({"match": {"value": 3}}))]}),
        ),
        (
            r#"s = "line\nbreak \"q\" \\ \u{e9}""#,
            must(field("s", json!({"match": {"value": "line\nbreak \"q\" \\ é"}}))),
        ),
        ("()", json!({})),
        ("((a = 1))", must(field("a", json!({"match": {"value": 1}})))),
    ];
    assert!(cases.len() >= 20);
    for (expr, expected) in cases {
        assert_eq!(json_of(expr), expected, "{expr}");
        // The JSON form means the same filter, and the expression prints back to an equivalent one.
        let f: Filter = serde_json::from_value(expected).unwrap();
        assert_eq!(parse(&print(&f)).unwrap(), f, "{expr} printed as {}", print(&f));
    }
}

#[test]
fn errors_say_where_and_what_was_expected() {
    let cases = [
        (
            "city = AND x = 1",
            "1:8: expected a value (string, integer, `true` or `false`) after `=`, found `AND`",
        ),
        (r#"city = "Paris" AND"#, "1:19: expected a condition"),
        (r#"city "Paris""#, "1:6: expected an operator"),
        ("(a = 1", "1:7: expected `)`, `AND` or `OR`, found end of input"),
        ("a = 1)", "1:6: expected no `)` here (unbalanced)"),
        ("a = 1 b = 2", "1:7: expected `AND`, `OR` or end of input, found `b`"),
        ("a = 1 AND\n  b < \"yesterday\"", "2:7: `\"yesterday\"` is not an RFC 3339 date-time"),
        ("a = \"unterminated", "1:5: unterminated string"),
        (r#"a = "\q""#, "1:6: unknown escape"),
        ("geo_radius(loc, 1, 2, 5)", "1:23: expected a distance with its unit"),
        (
            "geo_radius(loc, 1, 2, 5mi)",
            "1:23: expected a distance with its unit (such as `300m` or `5km`), found `5mi`",
        ),
        ("foo(x)", "1:1: unknown function `foo`"),
        ("a = 1.5", "1:5: expected a value"),
        ("a = 1 # x", "1:7: unexpected character `#`"),
        ("x = 99999999999999999999", "1:5: integer 99999999999999999999 is out of range"),
        ("has_id(-1)", "1:8: expected a point id"),
        ("has_id(\"nope\")", "1:8: expected a point id"),
        ("values_count(x) = 3", "1:17: expected a comparison"),
        ("range(x, > 1, > 2)", "1:17: a second `>` bound"),
        ("x NOT = 1", "1:7: expected `IN` after `NOT`"),
        ("x BETWEEN 1 OR 2", "1:13: expected `AND` between the bounds of `BETWEEN`"),
        ("x IN [1, 2", "1:11: expected `,` or `]`, found end of input"),
        ("x < 1e999", "1:5: number 1e999 is out of range"),
        ("", "1:1: expected a condition"),
        ("\n\n   `oops", "3:4: unterminated `-quoted key"),
        ("in = 1", "1:1: expected a condition"),
        ("min_should(x)", "1:12: expected a count"),
    ];
    for (expr, expected) in cases {
        let err = parse(expr).expect_err(expr);
        let crate::Error::BadInput(msg) = &err else { panic!("{expr}: {err:?}") };
        assert!(msg.starts_with(expected), "{expr:?}: got {msg:?}, expected {expected:?}");
    }
    let deep = format!("{}a = 1{}", "(".repeat(200), ")".repeat(200));
    assert!(parse(&deep).unwrap_err().to_string().contains("nested deeper than"));
    assert!(parse(&"NOT ".repeat(200)).unwrap_err().to_string().contains("nested deeper than"));
}

#[test]
fn embedded_api_forms() {
    let f: Filter = "a = 1".parse().unwrap();
    assert_eq!(Filter::from_expression("a = 1").unwrap(), f);
    assert_eq!(f.to_expression(), "a = 1");
    assert_eq!(print(&Filter::default()), "()");
}

// ---- property tests ----

fn token_soup() -> impl Strategy<Value = String> {
    let tokens = vec![
        "(",
        ")",
        "[",
        "]",
        ",",
        "AND",
        "OR",
        "NOT",
        "IN",
        "BETWEEN",
        "MATCHES",
        "x",
        "a.b[0]",
        "`k`",
        "=",
        "!=",
        "<",
        ">=",
        "\"s\"",
        "\"2023-01-01\"",
        "1",
        "-2.5",
        "5km",
        "true",
        "is_empty",
        "has_id",
        "geo_radius",
        "geo_polygon",
        "nested",
        "min_should",
        "values_count",
        "range",
        "(1, 2)",
        "\"",
        "`",
        "\\",
        "\n",
    ];
    prop::collection::vec(prop::sample::select(tokens), 0..24).prop_map(|t| t.join(" "))
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "a", "b.c", "tags[]", "x[0].y_1", "and", "In", "my key", "we`ird", "", "é.ü"
        ])
        .prop_map(String::from),
        any::<String>(),
    ]
}

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![any::<f64>().prop_filter("finite", |x| x.is_finite()), (-1000i32..1000).prop_map(f64::from)]
}

fn match_value() -> impl Strategy<Value = MatchValue> {
    prop_oneof![
        any::<bool>().prop_map(MatchValue::Bool),
        any::<i64>().prop_map(MatchValue::Integer),
        any::<String>().prop_map(MatchValue::Keyword),
    ]
}

fn bound(numbers_only: bool) -> BoxedStrategy<Bound> {
    let number = finite().prop_map(Bound::Number);
    if numbers_only {
        return number.boxed();
    }
    let dates =
        vec!["2023-02-08T10:49:00Z", "2023-02-08", "2023-02-08 09:49:00", "2024-01-01T00:00:00+02:00"];
    prop_oneof![number, prop::sample::select(dates).prop_map(|d| Bound::Datetime(DatetimeBound::new(d)))]
        .boxed()
}

fn range(numbers_only: bool) -> impl Strategy<Value = Range> {
    let b = || prop::option::of(bound(numbers_only));
    (b(), b(), b(), b())
        .prop_map(|(gt, gte, lt, lte)| Range { gt, gte, lt, lte })
        .prop_filter("a bound", |r| r.gt.is_some() || r.gte.is_some() || r.lt.is_some() || r.lte.is_some())
}

fn geo_point() -> impl Strategy<Value = GeoPoint> {
    (finite(), finite()).prop_map(|(lon, lat)| GeoPoint { lon, lat })
}

fn ring() -> impl Strategy<Value = GeoLineString> {
    prop::collection::vec(geo_point(), 0..5).prop_map(|points| GeoLineString { points })
}

fn field_condition() -> impl Strategy<Value = Condition> {
    let values = || prop::collection::vec(match_value(), 0..4);
    let part = prop_oneof![
        match_value().prop_map(|value| (Some(Match::Value { value }), None, None, None, None, None)),
        values().prop_map(|any| (Some(Match::Any { any }), None, None, None, None, None)),
        values().prop_map(|except| (Some(Match::Except { except }), None, None, None, None, None)),
        any::<String>().prop_map(|text| (Some(Match::Text { text }), None, None, None, None, None)),
        any::<String>().prop_map(|text_any| (
            Some(Match::TextAny { text_any }),
            None,
            None,
            None,
            None,
            None
        )),
        any::<String>().prop_map(|phrase| (Some(Match::Phrase { phrase }), None, None, None, None, None)),
        range(false).prop_map(|r| (None, Some(r), None, None, None, None)),
        (geo_point(), finite()).prop_map(|(center, radius)| (
            None,
            None,
            Some(GeoRadius { center, radius }),
            None,
            None,
            None
        )),
        (geo_point(), geo_point()).prop_map(|(top_left, bottom_right)| (
            None,
            None,
            None,
            Some(GeoBoundingBox { top_left, bottom_right }),
            None,
            None
        )),
        (ring(), prop::option::of(prop::collection::vec(ring(), 0..3))).prop_map(|(exterior, interiors)| (
            None,
            None,
            None,
            None,
            Some(GeoPolygon { exterior, interiors }),
            None
        )),
        range(true).prop_map(|r| (None, None, None, None, None, Some(r))),
    ];
    (key(), part).prop_map(|(key, (m, range, geo_radius, geo_bounding_box, geo_polygon, values_count))| {
        Condition::Field(Box::new(FieldCondition {
            key,
            r#match: m,
            range,
            geo_radius,
            geo_bounding_box,
            geo_polygon,
            values_count,
        }))
    })
}

fn point_id() -> impl Strategy<Value = PointId> {
    prop_oneof![
        any::<u64>().prop_map(PointId::Num),
        any::<[u8; 16]>().prop_map(|b| PointId::Uuid(uuid::Uuid::from_bytes(b))),
    ]
}

fn leaf() -> impl Strategy<Value = Condition> {
    prop_oneof![
        4 => field_condition(),
        1 => key().prop_map(|key| Condition::IsEmpty { is_empty: KeyRef { key } }),
        1 => key().prop_map(|key| Condition::IsNull { is_null: KeyRef { key } }),
        1 => prop::collection::vec(point_id(), 0..4).prop_map(|has_id| Condition::HasId { has_id }),
        1 => any::<String>().prop_map(|has_vector| Condition::HasVector { has_vector }),
    ]
}

fn filter_from(cond: impl Strategy<Value = Condition> + Clone) -> impl Strategy<Value = Filter> {
    let list = || prop::option::of(prop::collection::vec(cond.clone(), 0..4));
    let min = prop::option::of((prop::collection::vec(cond.clone(), 0..4), 0usize..4))
        .prop_map(|m| m.map(|(conditions, min_count)| MinShould { conditions, min_count }));
    (list(), list(), list(), min).prop_map(|(must, should, must_not, min_should)| Filter {
        must,
        should,
        must_not,
        min_should,
    })
}

fn condition() -> BoxedStrategy<Condition> {
    leaf()
        .prop_recursive(4, 48, 4, |inner| {
            prop_oneof![
                filter_from(inner.clone()).prop_map(Condition::Filter),
                (key(), filter_from(inner))
                    .prop_map(|(key, filter)| Condition::Nested { nested: Nested { key, filter } }),
            ]
        })
        .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn printed_filters_parse_to_their_canonical_form(f in filter_from(condition())) {
        let canonical = normalize(&f);
        let text = print(&f);
        let parsed = parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(&parsed, &canonical, "printed as {}", text);
        prop_assert_eq!(normalize(&canonical), canonical.clone());
        prop_assert_eq!(parse(&print(&canonical)).unwrap(), canonical);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in prop_oneof![any::<String>(), token_soup()]) {
        // Whatever parses is canonical and prints back to itself.
        if let Ok(f) = parse(&text) {
            prop_assert_eq!(normalize(&f), f.clone());
            prop_assert_eq!(parse(&print(&f)).unwrap(), f);
        }
    }
}
