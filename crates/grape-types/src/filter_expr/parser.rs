//! Recursive descent over the tokens, then the mapping of the expression tree to a [`Filter`].

use super::lexer::{error_at, tokenize, Keyword, Tok, Token};
use crate::filter::{
    Bound, Condition, DatetimeBound, FieldCondition, GeoBoundingBox, GeoLineString, GeoPoint, GeoPolygon,
    GeoRadius, KeyRef, Match, MatchValue, MinShould, Nested, Range,
};
use crate::{Error, Filter, PointId, Result};

/// Deeper nesting is refused (the parser and the filter's users recurse).
pub(super) const MAX_DEPTH: usize = 64;

/// The expression tree, before it is mapped to a filter.
#[derive(Debug)]
enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    /// Parentheses around `Or`, `And` or `Not` (around anything else they are dropped).
    Group(Box<Expr>),
    /// `()`: the empty filter.
    Empty,
    Cond(Condition),
    MinShould(usize, Vec<Expr>),
}

pub(super) fn parse(src: &str) -> Result<Filter> {
    let mut p = Parser { toks: tokenize(src)?, pos: 0, depth: 0 };
    let e = p.or_expr()?;
    if p.peek().tok != Tok::Eof {
        let what = if p.peek().tok == Tok::RParen {
            "no `)` here (unbalanced)"
        } else {
            "`AND`, `OR` or end of input"
        };
        return Err(p.expected(what));
    }
    Ok(to_filter(e))
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

fn field(key: String) -> FieldCondition {
    FieldCondition {
        key,
        r#match: None,
        range: None,
        geo_radius: None,
        geo_bounding_box: None,
        geo_polygon: None,
        values_count: None,
    }
}

impl Parser {
    fn peek(&self) -> &Token {
        // The token list always ends with Eof and `pos` never moves past it.
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    fn at(&self, tok: &Tok) -> bool {
        &self.peek().tok == tok
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        let here = self.at(tok);
        if here {
            self.pos += 1;
        }
        here
    }

    fn expected(&self, what: &str) -> Error {
        let t = self.peek();
        error_at(t.line, t.col, format!("expected {what}, found {}", t.describe()))
    }

    fn expect(&mut self, tok: &Tok, what: &str) -> Result<()> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let t = self.peek();
            return Err(error_at(t.line, t.col, format!("expression nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn or_expr(&mut self) -> Result<Expr> {
        self.enter()?;
        let mut items = vec![self.and_expr()?];
        while self.eat(&Tok::Kw(Keyword::Or)) {
            items.push(self.and_expr()?);
        }
        self.depth -= 1;
        Ok(if items.len() == 1 { items.remove(0) } else { Expr::Or(items) })
    }

    fn and_expr(&mut self) -> Result<Expr> {
        let mut items = vec![self.unary()?];
        while self.eat(&Tok::Kw(Keyword::And)) {
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Expr::And(items) })
    }

    fn unary(&mut self) -> Result<Expr> {
        if self.eat(&Tok::Kw(Keyword::Not)) {
            self.enter()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr> {
        let t = self.peek().clone();
        match &t.tok {
            Tok::LParen => {
                self.next();
                if self.eat(&Tok::RParen) {
                    return Ok(Expr::Empty);
                }
                let inner = self.or_expr()?;
                self.expect(&Tok::RParen, "`)`, `AND` or `OR`")?;
                Ok(match inner {
                    e @ (Expr::Or(_) | Expr::And(_) | Expr::Not(_)) => Expr::Group(Box::new(e)),
                    e => e,
                })
            }
            Tok::Key { text, bare } => {
                self.next();
                if *bare && self.at(&Tok::LParen) {
                    self.function(text, &t)
                } else {
                    self.comparison(text.clone()).map(Expr::Cond)
                }
            }
            _ => Err(self.expected("a condition (a key, a function such as `is_empty(..)`, `NOT` or `(`)")),
        }
    }

    fn key(&mut self) -> Result<String> {
        match self.peek().tok.clone() {
            Tok::Key { text, .. } => {
                self.next();
                Ok(text)
            }
            _ => Err(self.expected("a key")),
        }
    }

    fn op(&mut self) -> Option<Op> {
        let op = match self.peek().tok {
            Tok::Eq => Op::Eq,
            Tok::Ne => Op::Ne,
            Tok::Lt => Op::Lt,
            Tok::Le => Op::Le,
            Tok::Gt => Op::Gt,
            Tok::Ge => Op::Ge,
            _ => return None,
        };
        self.next();
        Some(op)
    }

    /// `<`, `<=`, `>` or `>=` (consumed only if it is one).
    fn ordering_op(&mut self) -> Option<Op> {
        matches!(self.peek().tok, Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge).then(|| self.op()).flatten()
    }

    fn comparison(&mut self, key: String) -> Result<Condition> {
        let mut f = field(key);
        if let Some(op) = self.op() {
            match op {
                Op::Eq => f.r#match = Some(Match::Value { value: self.match_value("after `=`")? }),
                Op::Ne => f.r#match = Some(Match::Except { except: vec![self.match_value("after `!=`")?] }),
                _ => f.range = Some(self.set_bound(Range::default(), op, false)?),
            }
        } else if self.eat(&Tok::Kw(Keyword::In)) {
            f.r#match = Some(Match::Any { any: self.value_list()? });
        } else if self.eat(&Tok::Kw(Keyword::Not)) {
            self.expect(&Tok::Kw(Keyword::In), "`IN` after `NOT`")?;
            f.r#match = Some(Match::Except { except: self.value_list()? });
        } else if self.eat(&Tok::Kw(Keyword::Between)) {
            f.range = Some(self.between(false)?);
        } else if self.eat(&Tok::Kw(Keyword::Matches)) {
            f.r#match = Some(Match::Text { text: self.string("a string after `MATCHES`")? });
        } else {
            return Err(self.expected(
                "an operator (`=`, `!=`, `<`, `<=`, `>`, `>=`, `IN`, `NOT IN`, `BETWEEN`, `MATCHES`)",
            ));
        }
        Ok(Condition::Field(Box::new(f)))
    }

    fn string(&mut self, what: &str) -> Result<String> {
        match self.peek().tok.clone() {
            Tok::Str(s) => {
                self.next();
                Ok(s)
            }
            _ => Err(self.expected(what)),
        }
    }

    fn match_value(&mut self, after: &str) -> Result<MatchValue> {
        let t = self.peek().clone();
        let v = match &t.tok {
            Tok::Str(s) => MatchValue::Keyword(s.clone()),
            Tok::Kw(Keyword::True) => MatchValue::Bool(true),
            Tok::Kw(Keyword::False) => MatchValue::Bool(false),
            Tok::Number { text, unit } if unit.is_empty() && is_integer(text) => {
                MatchValue::Integer(text.parse().map_err(|_| {
                    error_at(t.line, t.col, format!("integer {text} is out of range (64-bit signed)"))
                })?)
            }
            _ => return Err(self.expected(&format!("a value (string, integer, `true` or `false`) {after}"))),
        };
        self.next();
        Ok(v)
    }

    fn value_list(&mut self) -> Result<Vec<MatchValue>> {
        self.expect(&Tok::LBracket, "`[` starting a list of values")?;
        let mut out = Vec::new();
        if self.eat(&Tok::RBracket) {
            return Ok(out);
        }
        loop {
            out.push(self.match_value("in the list")?);
            if self.eat(&Tok::RBracket) {
                return Ok(out);
            }
            self.expect(&Tok::Comma, "`,` or `]`")?;
        }
    }

    /// A number (finite, without unit); `what` says what it is for.
    fn number(&mut self, what: &str) -> Result<f64> {
        let t = self.peek().clone();
        match &t.tok {
            Tok::Number { text, unit } if unit.is_empty() => {
                let x: f64 = text.parse().map_err(|_| self.expected(what))?;
                if !x.is_finite() {
                    return Err(error_at(t.line, t.col, format!("number {text} is out of range")));
                }
                self.next();
                Ok(x)
            }
            _ => Err(self.expected(what)),
        }
    }

    /// A range bound: a number, or (unless `numbers_only`) an RFC 3339 date-time string.
    fn bound(&mut self, after: &str, numbers_only: bool) -> Result<Bound> {
        let t = self.peek().clone();
        match &t.tok {
            Tok::Str(s) if !numbers_only => {
                let b = DatetimeBound::new(s.clone());
                if !b.is_valid() {
                    return Err(error_at(
                        t.line,
                        t.col,
                        format!("{} is not an RFC 3339 date-time", t.describe()),
                    ));
                }
                self.next();
                Ok(Bound::Datetime(b))
            }
            _ if numbers_only => Ok(Bound::Number(self.number(&format!("a number {after}"))?)),
            _ => Ok(Bound::Number(self.number(&format!("a number or a date-time string {after}"))?)),
        }
    }

    fn set_bound(&mut self, mut r: Range, op: Op, numbers_only: bool) -> Result<Range> {
        let t = self.peek().clone();
        let b = Some(self.bound(&format!("after `{}`", op.symbol()), numbers_only)?);
        let slot = match op {
            Op::Lt => &mut r.lt,
            Op::Le => &mut r.lte,
            Op::Gt => &mut r.gt,
            Op::Ge => &mut r.gte,
            // Callers pass only ordering operators.
            Op::Eq | Op::Ne => return Err(error_at(t.line, t.col, "expected an ordering operator")),
        };
        if slot.is_some() {
            return Err(error_at(t.line, t.col, format!("a second `{}` bound", op.symbol())));
        }
        *slot = b;
        Ok(r)
    }

    fn between(&mut self, numbers_only: bool) -> Result<Range> {
        let gte = Some(self.bound("after `BETWEEN`", numbers_only)?);
        self.expect(&Tok::Kw(Keyword::And), "`AND` between the bounds of `BETWEEN`")?;
        let lte = Some(self.bound("after `AND`", numbers_only)?);
        Ok(Range { gte, lte, ..Range::default() })
    }

    /// `, op bound` pairs up to the closing parenthesis (at least one).
    fn bounds(&mut self, numbers_only: bool) -> Result<Range> {
        let mut r = Range::default();
        loop {
            let Some(op) = self.ordering_op() else {
                return Err(self.expected("a bound (`<`, `<=`, `>` or `>=` and a value)"));
            };
            r = self.set_bound(r, op, numbers_only)?;
            if self.eat(&Tok::RParen) {
                return Ok(r);
            }
            self.expect(&Tok::Comma, "`,` or `)`")?;
        }
    }

    fn comma(&mut self) -> Result<()> {
        self.expect(&Tok::Comma, "`,`")
    }

    fn close(&mut self) -> Result<()> {
        self.expect(&Tok::RParen, "`)`")
    }

    fn lat_lon(&mut self) -> Result<GeoPoint> {
        let lat = self.number("a latitude")?;
        self.comma()?;
        let lon = self.number("a longitude")?;
        Ok(GeoPoint { lon, lat })
    }

    fn ring(&mut self) -> Result<GeoLineString> {
        self.expect(&Tok::LBracket, "`[` starting a ring of (lat, lon) points")?;
        let mut points = Vec::new();
        if self.eat(&Tok::RBracket) {
            return Ok(GeoLineString { points });
        }
        loop {
            self.expect(&Tok::LParen, "`(` starting a (lat, lon) point")?;
            points.push(self.lat_lon()?);
            self.close()?;
            if self.eat(&Tok::RBracket) {
                return Ok(GeoLineString { points });
            }
            self.expect(&Tok::Comma, "`,` or `]`")?;
        }
    }

    fn function(&mut self, name: &str, at: &Token) -> Result<Expr> {
        let lower = name.to_ascii_lowercase();
        self.next(); // `(`
        let cond = |c: Condition| Ok(Expr::Cond(c));
        match lower.as_str() {
            "is_empty" | "is_null" => {
                let key = KeyRef { key: self.key()? };
                self.close()?;
                cond(if lower == "is_empty" { Condition::IsEmpty { is_empty: key } } else { Condition::IsNull { is_null: key } })
            }
            "has_id" => {
                let mut ids = Vec::new();
                if !self.eat(&Tok::RParen) {
                    loop {
                        ids.push(self.point_id()?);
                        if self.eat(&Tok::RParen) {
                            break;
                        }
                        self.expect(&Tok::Comma, "`,` or `)`")?;
                    }
                }
                cond(Condition::HasId { has_id: ids })
            }
            "has_vector" => {
                let name = self.string("a vector name (a string)")?;
                self.close()?;
                cond(Condition::HasVector { has_vector: name })
            }
            "text_contains" | "text_any" | "phrase" => {
                let mut f = field(self.key()?);
                self.comma()?;
                let text = self.string("a string")?;
                f.r#match = Some(match lower.as_str() {
                    "text_any" => Match::TextAny { text_any: text },
                    "phrase" => Match::Phrase { phrase: text },
                    _ => Match::Text { text },
                });
                self.close()?;
                cond(Condition::Field(Box::new(f)))
            }
            "values_count" | "range" => {
                let numbers_only = lower == "values_count";
                let mut f = field(self.key()?);
                let r = if numbers_only && self.eat(&Tok::RParen) {
                    if self.eat(&Tok::Kw(Keyword::Between)) {
                        self.between(true)?
                    } else {
                        match self.ordering_op() {
                            Some(op) => self.set_bound(Range::default(), op, true)?,
                            None => {
                                return Err(self.expected(
                                    "a comparison (`<`, `<=`, `>`, `>=` or `BETWEEN`) after `values_count(..)`",
                                ))
                            }
                        }
                    }
                } else {
                    self.comma()?;
                    self.bounds(numbers_only)?
                };
                if numbers_only {
                    f.values_count = Some(r);
                } else {
                    f.range = Some(r);
                }
                cond(Condition::Field(Box::new(f)))
            }
            "geo_radius" => {
                let mut f = field(self.key()?);
                self.comma()?;
                let center = self.lat_lon()?;
                self.comma()?;
                let radius = self.distance()?;
                self.close()?;
                f.geo_radius = Some(GeoRadius { center, radius });
                cond(Condition::Field(Box::new(f)))
            }
            "geo_box" => {
                let mut f = field(self.key()?);
                self.comma()?;
                let top_left = self.lat_lon()?;
                self.comma()?;
                let bottom_right = self.lat_lon()?;
                self.close()?;
                f.geo_bounding_box = Some(GeoBoundingBox { top_left, bottom_right });
                cond(Condition::Field(Box::new(f)))
            }
            "geo_polygon" => {
                let mut f = field(self.key()?);
                self.comma()?;
                let exterior = self.ring()?;
                let mut holes = Vec::new();
                while self.eat(&Tok::Comma) {
                    holes.push(self.ring()?);
                }
                self.close()?;
                let interiors = (!holes.is_empty()).then_some(holes);
                f.geo_polygon = Some(GeoPolygon { exterior, interiors });
                cond(Condition::Field(Box::new(f)))
            }
            "nested" => {
                let key = self.key()?;
                self.comma()?;
                let filter = to_filter(self.or_expr()?);
                self.close()?;
                cond(Condition::Nested { nested: Nested { key, filter } })
            }
            "min_should" => {
                let t = self.peek().clone();
                let min_count = match &t.tok {
                    Tok::Number { text, unit } if unit.is_empty() && is_integer(text) => text.parse::<usize>().ok(),
                    _ => None,
                }
                .ok_or_else(|| self.expected("a count (a non-negative integer)"))?;
                self.next();
                let mut items = Vec::new();
                while self.eat(&Tok::Comma) {
                    items.push(self.or_expr()?);
                }
                self.close()?;
                Ok(Expr::MinShould(min_count, items))
            }
            _ => Err(error_at(
                at.line,
                at.col,
                format!(
                    "unknown function `{name}`; expected is_empty, is_null, has_id, has_vector, text_contains, text_any, phrase, \
                     values_count, range, geo_radius, geo_box, geo_polygon, nested or min_should"
                ),
            )),
        }
    }

    fn point_id(&mut self) -> Result<PointId> {
        let t = self.peek().clone();
        let id = match &t.tok {
            Tok::Number { text, unit } if unit.is_empty() && is_integer(text) => {
                text.parse::<u64>().ok().map(PointId::Num)
            }
            Tok::Str(s) => uuid::Uuid::parse_str(s).ok().map(PointId::Uuid),
            _ => None,
        };
        let id = id.ok_or_else(|| self.expected("a point id (an unsigned integer or a UUID string)"))?;
        self.next();
        Ok(id)
    }

    /// A distance with its unit, in metres.
    fn distance(&mut self) -> Result<f64> {
        let t = self.peek().clone();
        let metres = match &t.tok {
            Tok::Number { text, unit } => {
                let scale = match unit.as_str() {
                    "m" => Some(1.0),
                    "km" => Some(1000.0),
                    _ => None,
                };
                scale.zip(text.parse::<f64>().ok()).map(|(s, x)| x * s).filter(|m| m.is_finite())
            }
            _ => None,
        };
        let m = metres.ok_or_else(|| self.expected("a distance with its unit (such as `300m` or `5km`)"))?;
        self.next();
        Ok(m)
    }
}

fn is_integer(text: &str) -> bool {
    !text.contains(['.', 'e', 'E'])
}

/// The filter an expression means: see the module documentation for the mapping.
fn to_filter(e: Expr) -> Filter {
    let some = |v: Vec<Condition>| (!v.is_empty()).then_some(v);
    match e {
        Expr::Group(inner) => to_filter(*inner),
        Expr::Empty => Filter::default(),
        Expr::Or(items) => {
            Filter { should: some(items.into_iter().map(to_condition).collect()), ..Filter::default() }
        }
        Expr::Not(inner) => Filter { must_not: Some(vec![to_condition(*inner)]), ..Filter::default() },
        Expr::Cond(c) => Filter { must: Some(vec![c]), ..Filter::default() },
        Expr::MinShould(n, items) => Filter {
            min_should: Some(MinShould {
                conditions: items.into_iter().map(to_condition).collect(),
                min_count: n,
            }),
            ..Filter::default()
        },
        Expr::And(items) => {
            let last_or =
                items.iter().rposition(|e| matches!(e, Expr::Group(g) if matches!(**g, Expr::Or(_))));
            let last_min = items.iter().rposition(|e| matches!(e, Expr::MinShould(..)));
            let (mut must, mut must_not) = (Vec::new(), Vec::new());
            let (mut should, mut min_should) = (None, None);
            for (i, e) in items.into_iter().enumerate() {
                match e {
                    Expr::Group(g) if Some(i) == last_or => should = to_filter(*g).should,
                    Expr::MinShould(..) if Some(i) == last_min => min_should = to_filter(e).min_should,
                    Expr::Not(inner) => must_not.push(to_condition(*inner)),
                    e => must.push(to_condition(e)),
                }
            }
            Filter { must: some(must), should, must_not: some(must_not), min_should }
        }
    }
}

/// An expression as one condition of a list.
fn to_condition(e: Expr) -> Condition {
    match e {
        Expr::Cond(c) => c,
        Expr::Group(inner) => to_condition(*inner),
        e => Condition::Filter(to_filter(e)),
    }
}
