//! Checks on what a client sends, each naming the field that is wrong.

use super::error::{AppResult, Error};

pub const MAX_NAME_LEN: usize = 255;
pub const MAX_DESCRIPTION_LEN: usize = 4096;
pub const MAX_URL_LEN: usize = 4096;
pub const MAX_TAGS: usize = 100;

pub fn name(name: &str) -> AppResult<String> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(Error::Invalid("name: must not be empty".into()));
    }
    if trimmed.chars().count() > MAX_NAME_LEN {
        return Err(Error::Invalid(format!(
            "name: must be at most {MAX_NAME_LEN} characters"
        )));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Error::Invalid(
            "name: must not contain control characters".into(),
        ));
    }
    Ok(trimmed.to_owned())
}

pub fn description(text: &str) -> AppResult<String> {
    if text.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(Error::Invalid(format!(
            "description: must be at most {MAX_DESCRIPTION_LEN} characters"
        )));
    }
    Ok(text.to_owned())
}

/// The URL must be absolute http(s) with a host. Whether its address may be fetched is decided
/// by the importer at connection time, where DNS answers cannot be swapped behind our back.
pub fn image_url(raw: &str) -> AppResult<String> {
    if raw.len() > MAX_URL_LEN {
        return Err(Error::Invalid(format!(
            "url: must be at most {MAX_URL_LEN} characters"
        )));
    }
    let parsed = url::Url::parse(raw.trim())
        .map_err(|e| Error::Invalid(format!("url: not a valid URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::Invalid(format!(
            "url: scheme {:?} is not supported; use an http:// or https:// URL",
            parsed.scheme()
        )));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(Error::Invalid("url: must name a host".into()));
    }
    Ok(parsed.to_string())
}

/// DigitalOcean's rule: letters, numbers, colons, dashes and underscores, at most 255.
pub fn tags(tags: &[String]) -> AppResult<Vec<String>> {
    if tags.len() > MAX_TAGS {
        return Err(Error::Invalid(format!("tags: at most {MAX_TAGS} tags")));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let ok = !tag.is_empty()
            && tag.len() <= 255
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_'));
        if !ok {
            return Err(Error::Invalid(format!(
                "tags: {tag:?} is not a valid tag name (1 to 255 letters, numbers, colons, dashes or underscores)"
            )));
        }
        if !out.contains(tag) {
            out.push(tag.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http() {
        assert!(image_url("https://example.com/a.qcow2").is_ok());
        for bad in [
            "ftp://example.com/a",
            "file:///etc/passwd",
            "not a url",
            "http://",
        ] {
            let err = image_url(bad).unwrap_err().to_string();
            assert!(err.starts_with("url:"), "{bad}: {err}");
        }
    }

    #[test]
    fn tags_follow_digitalocean_rules() {
        assert_eq!(
            tags(&["a:b".into(), "a:b".into(), "c_d-1".into()]).unwrap(),
            ["a:b", "c_d-1"]
        );
        assert!(tags(&["has space".into()]).is_err());
        assert!(tags(&["".into()]).is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("  web  ").unwrap(), "web");
        assert!(name("   ").is_err());
        assert!(name(&"x".repeat(256)).is_err());
    }
}
