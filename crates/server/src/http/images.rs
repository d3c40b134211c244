//! The handlers of `/v2/images`: parse, call the application, convert. Nothing else.

use super::error::{Error, HttpResult};
use super::extract::{ImageIdPath, ImageRefPath, JsonBody};
use super::params;
use super::HttpState;
use crate::app::{self, Caller, ListParams};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use tidepool_api::{ImageCreate, ImageEnvelope, ImageList, ImageUpdate, Links, Meta, Pages};

type HandlerResult = HttpResult<Response>;

pub async fn image_list(
    State(state): State<HttpState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> HandlerResult {
    let params = params::list_params(query.as_deref())?;
    let page = state.app.image_list(&caller, &params).await?;
    let pages = page_links(&state.base_url(&headers), &params, page.total);
    let size_hint = 512 + page.images.len() * IMAGE_JSON_BYTES;
    let body = ImageList {
        images: page.images,
        links: Links { pages },
        meta: Meta { total: page.total },
    };
    json_response(&body, size_hint)
}

/// About what one image takes in JSON (a bench image is 315 bytes).
const IMAGE_JSON_BYTES: usize = 384;

/// A JSON body written into a buffer of about its final size: axum's `Json` starts at 128 bytes
/// and grows by doubling, copying the body some nine times on the way to a 200-image page.
fn json_response(value: &impl serde::Serialize, size_hint: usize) -> HandlerResult {
    let mut body = Vec::with_capacity(size_hint);
    serde_json::to_writer(&mut body, value).map_err(app::Error::internal)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

pub async fn image_get(
    State(state): State<HttpState>,
    Extension(caller): Extension<Caller>,
    ImageRefPath(image): ImageRefPath,
) -> HandlerResult {
    let image = state.app.image_get(&caller, &image).await?;
    Ok(Json(ImageEnvelope { image }).into_response())
}

pub async fn image_create(
    State(state): State<HttpState>,
    Extension(caller): Extension<Caller>,
    JsonBody(create): JsonBody<ImageCreate>,
) -> HandlerResult {
    let image = state.app.image_create(&caller, create).await?;
    Ok((StatusCode::ACCEPTED, Json(ImageEnvelope { image })).into_response())
}

pub async fn image_update(
    State(state): State<HttpState>,
    Extension(caller): Extension<Caller>,
    ImageIdPath(id): ImageIdPath,
    JsonBody(update): JsonBody<ImageUpdate>,
) -> HandlerResult {
    let image = state.app.image_update(&caller, id, update).await?;
    Ok(Json(ImageEnvelope { image }).into_response())
}

pub async fn image_delete(
    State(state): State<HttpState>,
    Extension(caller): Extension<Caller>,
    ImageIdPath(id): ImageIdPath,
) -> HandlerResult {
    state.app.image_delete(&caller, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn image_import_progress(
    State(state): State<HttpState>,
    Extension(caller): Extension<Caller>,
    ImageIdPath(id): ImageIdPath,
) -> HandlerResult {
    Ok(Json(state.app.image_import_progress(&caller, id).await?).into_response())
}

/// Only the links that make sense: `first`/`prev` after page 1, `next`/`last` before the last.
fn page_links(base: &str, params: &ListParams, total: u64) -> Pages {
    let per_page = u64::from(params.per_page);
    let last = total.div_ceil(per_page).max(1);
    let page = params.page;
    let link = |n: u64| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(listing) = params.listing {
            q.append_pair("type", listing.as_str());
        }
        if params.private_only {
            q.append_pair("private", "true");
        }
        if let Some(tag) = &params.tag {
            q.append_pair("tag_name", tag);
        }
        q.append_pair("page", &n.to_string());
        q.append_pair("per_page", &per_page.to_string());
        format!("{base}/v2/images?{}", q.finish())
    };
    let mut pages = Pages::default();
    if page > 1 {
        pages.first = Some(link(1));
        pages.prev = Some(link((page - 1).min(last)));
    }
    if page < last {
        pages.next = Some(link(page + 1));
        pages.last = Some(link(last));
    }
    pages
}

pub async fn not_found() -> Error {
    app::Error::NotFound.into()
}

pub async fn method_not_allowed() -> Error {
    Error::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(page: u64, per_page: u32) -> ListParams {
        ListParams {
            listing: None,
            private_only: true,
            tag: Some("a b".into()),
            page,
            per_page,
        }
    }

    #[test]
    fn links_follow_digitalocean_rules() {
        let one = page_links("http://h", &params(1, 20), 20);
        assert_eq!(one, Pages::default(), "one page holds all: no links");
        let first = page_links("http://h", &params(1, 2), 5);
        assert!(first.first.is_none() && first.prev.is_none());
        assert_eq!(
            first.next.as_deref(),
            Some("http://h/v2/images?private=true&tag_name=a+b&page=2&per_page=2")
        );
        assert_eq!(
            first.last.as_deref(),
            Some("http://h/v2/images?private=true&tag_name=a+b&page=3&per_page=2")
        );
        let last = page_links("http://h", &params(3, 2), 5);
        assert!(last.next.is_none() && last.last.is_none());
        assert!(last.prev.unwrap().contains("page=2&"));
    }
}
