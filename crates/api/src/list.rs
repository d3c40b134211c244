use crate::{Image, ListType};
use serde::{Deserialize, Serialize};

/// The body of `GET /v2/images`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageList {
    /// The images of this page.
    pub images: Vec<Image>,
    /// Links to the neighbouring pages.
    #[serde(default)]
    pub links: Links,
    /// `total` counts every match across all pages.
    pub meta: Meta,
}

/// `{"pages": {…}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Links {
    /// Only the links that make sense: no `first`/`prev` on page 1, no `next`/`last` on the last.
    #[serde(default)]
    pub pages: Pages,
}

/// Absolute URLs of the other pages of a list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pages {
    /// The first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<String>,
    /// The previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
    /// The next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// The last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
}

/// `{"total": N}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// Every match across all pages (not the size of this page).
    pub total: u64,
}

/// The query of `GET /v2/images`; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageListQuery {
    /// Public distribution or application images only.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ListType>,
    /// `true`: only the caller's own images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private: Option<bool>,
    /// Only images carrying this tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_name: Option<String>,
    /// Page number, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    /// Images per page, 1 to 200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_page: Option<u32>,
}

/// The body of every 4xx and 5xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A short code for the status: `not_found`, `unauthorized`, `unprocessable_entity`, …
    pub id: String,
    /// What went wrong, in words meant for the user.
    pub message: String,
    /// Identifies the request in the server's logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_pages_serialise_as_empty_object() {
        let list = ImageList {
            images: vec![],
            links: Links::default(),
            meta: Meta { total: 0 },
        };
        assert_eq!(
            serde_json::to_string(&list).unwrap(),
            r#"{"images":[],"links":{"pages":{}},"meta":{"total":0}}"#
        );
    }
}
