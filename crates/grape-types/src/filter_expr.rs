//! Filter expressions: a readable text syntax for [`Filter`] (a Grape extension; Qdrant clients send
//! JSON filters, which mean the same thing).
//!
//! ```
//! use grape_types::filter_expr;
//! let f = filter_expr::parse(r#"city = "Paris" AND (price < 100 OR tags IN ["sale", "new"])
//!     AND geo_radius(location, 48.85, 2.35, 5km) AND NOT is_empty(reviews)"#).unwrap();
//! assert_eq!(f.should.as_ref().map(Vec::len), Some(2));
//! assert_eq!(filter_expr::parse(&filter_expr::print(&f)).unwrap(), f);
//! ```
//!
//! # Grammar
//!
//! ```text
//! filter     = or_expr ;                       (* the whole input *)
//! or_expr    = and_expr { "OR" and_expr } ;
//! and_expr   = unary { "AND" unary } ;
//! unary      = "NOT" unary | primary ;
//! primary    = "(" [ or_expr ] ")" | function | key compare ;
//! compare    = ( "=" | "==" ) value           (* match value *)
//!            | ( "!=" | "<>" ) value          (* match except [value] *)
//!            | ( "<" | "<=" | ">" | ">=" ) bound
//!            | "IN" list | "NOT" "IN" list    (* match any / except *)
//!            | "BETWEEN" bound "AND" bound    (* range gte .. lte *)
//!            | "MATCHES" string ;             (* match text *)
//! function   = "is_empty" "(" key ")" | "is_null" "(" key ")"
//!            | "has_id" "(" [ id { "," id } ] ")" | "has_vector" "(" string ")"
//!            | "text_contains" "(" key "," string ")"    (* match text *)
//!            | "text_any" "(" key "," string ")"         (* match text_any *)
//!            | "phrase" "(" key "," string ")"           (* match phrase *)
//!            | "values_count" "(" key ")" ( ( "<" | "<=" | ">" | ">=" ) number
//!                                         | "BETWEEN" number "AND" number )
//!            | "values_count" "(" key "," bounds ")" | "range" "(" key "," bounds ")"
//!            | "geo_radius" "(" key "," lat "," lon "," distance ")"
//!            | "geo_box" "(" key "," lat "," lon "," lat "," lon ")"   (* top left, bottom right *)
//!            | "geo_polygon" "(" key "," ring { "," ring } ")"         (* exterior, then holes *)
//!            | "nested" "(" key "," or_expr ")"
//!            | "min_should" "(" integer { "," or_expr } ")" ;
//! bounds     = op bound { "," op bound } ;    (* op is < <= > >=, each at most once *)
//! ring       = "[" [ "(" lat "," lon ")" { "," "(" lat "," lon ")" } ] "]" ;
//! value      = string | integer | "true" | "false" ;
//! list       = "[" [ value { "," value } ] "]" ;
//! bound      = number | string ;              (* a string must be an RFC 3339 date-time *)
//! id         = integer | string ;             (* an unsigned integer or a UUID *)
//! distance   = number ( "m" | "km" ) ;        (* no space: 300m, 5km, 1.5km *)
//! key        = ident { "." ident | "[]" | "[" digits "]" }   (* no spaces inside *)
//!            | "`" { any character, "``" for a backtick } "`" ;
//! ident      = ( letter | "_" ) { letter | digit | "_" } ;
//! number     = [ "-" ] digits [ "." digits ] [ ( "e" | "E" ) [ "+" | "-" ] digits ] ;
//! string     = '"' { character | escape } '"' ;   (* \" \\ \n \r \t \u{hex} *)
//! ```
//!
//! Keywords (`AND OR NOT IN BETWEEN MATCHES true false`) and function names are case-insensitive; a key
//! spelled like a keyword needs backticks. `NOT` binds tighter than `AND`, which binds tighter than `OR`.
//! Points are written `lat, lon` (latitude first, as spoken); distances are stored in metres.
//!
//! # Mapping to the filter
//!
//! A condition is a `must` of one condition; `a OR b OR ..` is a `should`; `NOT x` a `must_not` of one.
//! In `a AND b AND ..` every conjunct goes to `must`, except: a conjunct `NOT x` goes to `must_not`;
//! the **last** parenthesised `( .. OR .. )` conjunct becomes the filter's `should`; the last
//! `min_should(..)` conjunct becomes its `min_should`. Anything else that is not one condition (a
//! parenthesised `AND`, `NOT` or a further `OR` group, `()`) becomes a nested filter condition, so
//! parentheses keep their structure except around a single condition. `()` is the empty filter (which
//! every point passes). `x != v` is `match: {except: [v]}` (a point without `x` fails it, as in SQL),
//! while `NOT x = v` is `must_not` (a point without `x` passes it).
//!
//! # Printing and the canonical form
//!
//! [`print`] writes a filter's `must` conditions, then its `should` (in parentheses), its `must_not`
//! (each as `NOT ..`) and its `min_should`, joined with `AND`. A range with one bound prints as a
//! comparison, with `gte` and `lte` as `BETWEEN`, otherwise as `range(key, > a, <= b)`.
//! `parse(print(f))` equals [`normalize`]`(f)`, which (at every level):
//! 1. drops empty `must` / `should` / `must_not` lists and empty polygon `interiors`;
//! 2. turns a one-condition `should` into the last `must` condition (or, when that condition is a
//!    filter of only a `should`, into that `should`);
//! 3. when `should` (resp. `min_should`) is absent, moves the last `must` condition that is a filter of
//!    only a `should` (resp. only a `min_should`) there;
//! 4. replaces a nested filter condition of one `must` condition with that condition, and a filter of
//!    one `must` condition that is a filter with that filter.
//!
//! Filters the parser returns are already canonical. A field condition with several parts (match and
//! range in one object) has no syntax: it prints as its parts joined with `AND` (the same filter only
//! for single-valued fields); one with no part, or with non-finite numbers, prints as text that does
//! not parse (such filters fail [`Filter::validate`]).

mod lexer;
mod parser;
mod printer;
#[cfg(test)]
mod tests;

use crate::{Filter, Result};

/// Parses a filter expression. Errors are [`Error::BadInput`](crate::Error::BadInput) with the line
/// and column of the mistake and what was expected there (`1:10: expected a value ..`).
pub fn parse(text: &str) -> Result<Filter> {
    parser::parse(text)
}

/// The expression of a filter (see the module documentation for the form and its limits).
pub fn print(filter: &Filter) -> String {
    printer::print(filter)
}

/// The canonical form of a filter under the expression mapping: `parse(print(f)) == normalize(f)`.
pub fn normalize(filter: &Filter) -> Filter {
    printer::normalize(filter)
}

impl Filter {
    /// A filter from its expression (see [`filter_expr`](self)).
    pub fn from_expression(text: &str) -> Result<Filter> {
        parse(text)
    }

    /// This filter as an expression (see [`filter_expr`](self)).
    pub fn to_expression(&self) -> String {
        print(self)
    }
}

impl std::str::FromStr for Filter {
    type Err = crate::Error;

    fn from_str(text: &str) -> Result<Filter> {
        parse(text)
    }
}
