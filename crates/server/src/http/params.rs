//! Turning what a client sent (query, path, body) into typed values, with errors that name
//! the field. Nothing here panics or answers 500 on any input.

use super::error::Error;
use crate::app::ListParams;
use axum::body::Bytes;
use serde::de::DeserializeOwned;
use tidepool_api::{ImageRef, ListType, DEFAULT_PER_PAGE, MAX_PER_PAGE};

/// Go's `strconv.ParseBool`, which DigitalOcean's API uses for boolean query parameters.
fn parse_bool(field: &str, value: &str) -> Result<bool, Error> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(Error::BadRequest(format!(
            "{field}: {value:?} is not a boolean; use true or false"
        ))),
    }
}

fn parse_bounded(field: &str, value: &str, max: u32) -> Result<u32, Error> {
    let out_of_range = || {
        Error::BadRequest(format!(
            "{field}: must be an integer from 1 to {max}, got {value:?}"
        ))
    };
    let n: u64 = value.trim().parse().map_err(|_| out_of_range())?;
    if n == 0 || n > u64::from(max) {
        return Err(out_of_range());
    }
    Ok(n as u32)
}

/// A page number: at least 1 and, as the spec has it, without an upper bound. A page past the
/// last is an empty page (its links lead back), however far past; digits beyond `u64` name such
/// a page too.
fn parse_page(value: &str) -> Result<u64, Error> {
    let page = decimal(value.trim()).unwrap_or(0);
    if page == 0 {
        return Err(Error::BadRequest(format!(
            "page: must be an integer of 1 or more, got {value:?}"
        )));
    }
    Ok(page)
}

/// The list's query. Unknown parameters are ignored and empty values count as absent, as
/// DigitalOcean's API does.
pub fn list_params(query: Option<&str>) -> Result<ListParams, Error> {
    let mut params = ListParams {
        listing: None,
        private_only: false,
        tag: None,
        page: 1,
        per_page: DEFAULT_PER_PAGE,
    };
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if value.is_empty() {
            continue;
        }
        match key.as_ref() {
            "type" => {
                params.listing = Some(
                    value
                        .parse::<ListType>()
                        .map_err(|e| Error::BadRequest(format!("type: {e}")))?,
                )
            }
            "private" => params.private_only = parse_bool("private", &value)?,
            "tag_name" => params.tag = Some(value.into_owned()),
            "page" => params.page = parse_page(&value)?,
            "per_page" => params.per_page = parse_bounded("per_page", &value, MAX_PER_PAGE)?,
            _ => {}
        }
    }
    Ok(params)
}

/// GET takes an id or the slug of a public image. Digits too many for an id name no image that
/// can exist: the largest id stands for them.
pub fn image_ref(raw: &str) -> ImageRef {
    match decimal(raw) {
        Some(id) => ImageRef::Id(id),
        None => ImageRef::Slug(raw.to_owned()),
    }
}

/// Digits only, read as a number; more than `u64` holds reads as `u64::MAX` (an id or a page
/// that far off names nothing, the same as the largest).
fn decimal(raw: &str) -> Option<u64> {
    (!raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()))
        .then(|| raw.parse().unwrap_or(u64::MAX))
}

/// PUT and DELETE take an integer id only.
pub fn image_id(raw: &str) -> Result<i64, Error> {
    numeric_id(raw).ok_or_else(|| {
        Error::BadRequest(format!(
            "image_id: {raw:?} is not an integer; images are updated and deleted by id"
        ))
    })
}

/// A decimal id. Digits too many for an i64 name no image that can exist: -1 stands for it.
fn numeric_id(raw: &str) -> Option<i64> {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(raw.parse().unwrap_or(-1))
}

/// A JSON body. Syntax errors are 400; a well-formed body with a wrong, missing or unknown
/// value is 422, with the path of the field in the message.
pub fn json_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::BadRequest(
            "the request body is empty; send a JSON object".into(),
        ));
    }
    // serde also fills a struct from a JSON array, by position: `["web"]` would rename an
    // image and `[null]` would be an empty update. The API's bodies are objects, nothing else.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                Ok(_) => Error::Invalid("the request body must be a JSON object".into()),
                Err(e) => Error::BadRequest(format!("error parsing request body: {e}")),
            },
        );
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = if path.is_empty() || path == "." {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        };
        match inner.classify() {
            serde_json::error::Category::Data => Error::Invalid(message),
            _ => Error::BadRequest(format!("error parsing request body: {message}")),
        }
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_query_defaults_and_bounds() {
        let p = list_params(None).unwrap();
        assert_eq!((p.page, p.per_page, p.private_only), (1, 20, false));
        let p = list_params(Some(
            "type=application&private=true&tag_name=web&page=3&per_page=200&x=1",
        ))
        .unwrap();
        assert_eq!(p.listing, Some(ListType::Application));
        assert!(p.private_only);
        assert_eq!(
            (p.tag.as_deref(), p.page, p.per_page),
            (Some("web"), 3, 200)
        );
        for (q, field) in [
            ("per_page=0", "per_page"),
            ("per_page=201", "per_page"),
            ("page=0", "page"),
            ("page=x", "page"),
            ("type=foo", "type"),
            ("private=maybe", "private"),
        ] {
            let err = list_params(Some(q)).unwrap_err().to_string();
            assert!(err.starts_with(field), "{q}: {err}");
        }
        assert_eq!(list_params(Some("page=&type=")).unwrap().page, 1);
        // No upper bound: a page past the end is an empty page, not an error.
        for (q, page) in [
            ("page=7963246984", 7_963_246_984),
            ("page=18446744073709551615", u64::MAX),
            ("page=99999999999999999999999999", u64::MAX),
        ] {
            assert_eq!(list_params(Some(q)).unwrap().page, page, "{q}");
        }
        for q in ["page=-1", "page=1.5", "page=00"] {
            let err = list_params(Some(q)).unwrap_err().to_string();
            assert!(
                err.starts_with("page: must be an integer of 1 or more"),
                "{q}: {err}"
            );
        }
    }

    #[test]
    fn ids_and_slugs() {
        assert_eq!(image_ref("42"), ImageRef::Id(42));
        assert_eq!(
            image_ref("ubuntu-24-04-x64"),
            ImageRef::Slug("ubuntu-24-04-x64".into())
        );
        assert_eq!(image_ref("99999999999999999999999"), ImageRef::Id(u64::MAX));
        assert!(image_id("abc").is_err());
        assert!(image_id("1.5").is_err());
        assert_eq!(image_id("7").unwrap(), 7);
    }

    #[test]
    fn json_errors_name_the_field() {
        let err = json_body::<tidepool_api::ImageCreate>(&Bytes::from_static(
            br#"{"name":"a","url":"http://x/","region":"mars1"}"#,
        ))
        .unwrap_err();
        assert!(
            matches!(&err, Error::Invalid(m) if m.starts_with("region:") && m.contains("mars1")),
            "{err:?}"
        );
        let err = json_body::<tidepool_api::ImageCreate>(&Bytes::from_static(br#"{"name":5}"#))
            .unwrap_err();
        assert!(
            matches!(&err, Error::Invalid(m) if m.starts_with("name:")),
            "{err:?}"
        );
        let err =
            json_body::<tidepool_api::ImageCreate>(&Bytes::from_static(b"{not json")).unwrap_err();
        assert!(matches!(err, Error::BadRequest(_)));
    }

    #[test]
    fn bodies_must_be_objects_not_arrays() {
        // Arrays used to be read by position into the fields; only an object is a body.
        for body in [
            br#"["renamed"]"#.as_slice(),
            br#"[null, null]"#.as_slice(),
            br#" []"#.as_slice(),
            b"null",
            b"\"name\"",
        ] {
            let err =
                json_body::<tidepool_api::ImageUpdate>(&Bytes::copy_from_slice(body)).unwrap_err();
            assert!(
                matches!(&err, Error::Invalid(m) if m.contains("must be a JSON object")),
                "{}: {err:?}",
                String::from_utf8_lossy(body)
            );
        }
        let err = json_body::<tidepool_api::ImageCreate>(&Bytes::from_static(
            br#"["n", "http://x/", "nyc3"]"#,
        ))
        .unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err:?}");
        // Broken JSON stays a 400.
        let err = json_body::<tidepool_api::ImageUpdate>(&Bytes::from_static(b"[1,")).unwrap_err();
        assert!(matches!(err, Error::BadRequest(_)), "{err:?}");
        let update: tidepool_api::ImageUpdate =
            json_body(&Bytes::from_static(b" {\"name\": \"x\"} ")).unwrap();
        assert_eq!(update.name.as_deref(), Some("x"));
    }
}
