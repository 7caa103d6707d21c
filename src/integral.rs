//! Whole numbers as JSON Schema counts them: `5` and `5.0` are the same
//! integer, and a client generated from the OpenAPI document may write
//! either. Request fields the document types `integer` read both; serde
//! alone refuses `5.0` for a `u32`.

use serde::de::Error;
use serde::{Deserialize, Deserializer};

/// `deserialize_with` for an optional `u32` request field (`null` is absent).
pub fn option_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    whole_u32(&number).map(Some).ok_or_else(|| {
        D::Error::custom(format!(
            "must be a whole number from 0 to {}, got {number}",
            u32::MAX
        ))
    })
}

fn whole_u32(number: &serde_json::Number) -> Option<u32> {
    if let Some(n) = number.as_u64() {
        return u32::try_from(n).ok();
    }
    let f = number.as_f64()?;
    let whole = f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&f);
    whole.then_some(f as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    struct Input {
        #[serde(default, deserialize_with = "option_u32")]
        n: Option<u32>,
    }

    fn read(json: &str) -> Result<Option<u32>, String> {
        serde_json::from_str::<Input>(json)
            .map(|i| i.n)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn integral_floats_read_as_integers() {
        assert_eq!(read(r#"{"n": 198}"#), Ok(Some(198)));
        assert_eq!(read(r#"{"n": 198.0}"#), Ok(Some(198)));
        assert_eq!(read(r#"{"n": 2e3}"#), Ok(Some(2000)));
        assert_eq!(read(r#"{"n": -0.0}"#), Ok(Some(0)));
        assert_eq!(read(r#"{"n": null}"#), Ok(None));
        assert_eq!(read("{}"), Ok(None));
    }

    #[test]
    fn fractions_negatives_and_overflow_are_refused() {
        for json in [
            r#"{"n": 1.5}"#,
            r#"{"n": -1}"#,
            r#"{"n": 4294967296}"#,
            r#"{"n": 4294967296.0}"#,
            r#"{"n": "5"}"#,
        ] {
            assert!(read(json).is_err(), "{json}");
        }
    }
}
