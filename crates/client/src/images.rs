//! The five operations of `/v2/images`, and tidepool's import progress.

use crate::client::{decode, Client};
use crate::error::Result;
use reqwest::Method;
use serde_json::Value;
use tidepool_api::{
    Image, ImageCreate, ImageList, ImageListQuery, ImageRef, ImageUpdate, ImportProgress,
};

impl Client {
    /// One page of images: `GET /v2/images` with the query's filters and page.
    /// [`Client::images_stream`] walks every page.
    pub async fn images_list(&self, query: &ImageListQuery) -> Result<ImageList> {
        let mut url = self.url(&["v2", "images"]);
        {
            let mut q = url.query_pairs_mut();
            if let Some(kind) = query.kind {
                q.append_pair("type", kind.as_str());
            }
            if let Some(private) = query.private {
                q.append_pair("private", if private { "true" } else { "false" });
            }
            if let Some(tag) = &query.tag_name {
                q.append_pair("tag_name", tag);
            }
            if let Some(page) = query.page {
                q.append_pair("page", &page.to_string());
            }
            if let Some(per_page) = query.per_page {
                q.append_pair("per_page", &per_page.to_string());
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        self.list_page(url).await
    }

    /// One page from an absolute URL (a `links.pages` one, or the first).
    pub(crate) async fn list_page(&self, url: url::Url) -> Result<ImageList> {
        let answer = self.send(Method::GET, url, None::<&()>).await?;
        let mut list: Value = decode(&answer)?;
        if let Some(images) = list.get_mut("images").and_then(Value::as_array_mut) {
            images.iter_mut().for_each(|i| complete_image(i, None));
        }
        from_value(&answer, list)
    }

    /// One image, by id or (public images only) by slug: `GET /v2/images/{id}`.
    pub async fn image_get(&self, image: impl Into<ImageRef>) -> Result<Image> {
        let id = image.into().to_string();
        self.image_call(Method::GET, &id, None).await
    }

    /// Starts the import of a custom image from a URL: `POST /v2/images`. The image comes
    /// back with status `NEW`; [`Client::wait_until_available`] waits for the import.
    ///
    /// Never retried after a 5xx or a lost connection, which may have created the image.
    pub async fn image_create(&self, create: &ImageCreate) -> Result<Image> {
        let url = self.url(&["v2", "images"]);
        let answer = self.send(Method::POST, url, Some(create)).await?;
        envelope(&answer, Some("custom"))
    }

    /// Renames an image, or changes the distribution or description of a custom one:
    /// `PUT /v2/images/{id}`.
    pub async fn image_update(&self, id: u64, update: &ImageUpdate) -> Result<Image> {
        self.image_call(Method::PUT, &id.to_string(), Some(update))
            .await
    }

    /// Deletes a snapshot or custom image: `DELETE /v2/images/{id}`.
    pub async fn image_delete(&self, id: u64) -> Result<()> {
        let url = self.url(&["v2", "images", &id.to_string()]);
        self.send(Method::DELETE, url, None::<&()>).await?;
        Ok(())
    }

    /// How far the import of an image has come: `GET /v2/images/{id}/import`, a tidepool
    /// extension. `Ok(None)` when the server does not have it (DigitalOcean answers 404 while
    /// the image itself exists); an image that does not exist is a 404 error.
    pub async fn image_import_progress(&self, id: u64) -> Result<Option<ImportProgress>> {
        let url = self.url(&["v2", "images", &id.to_string(), "import"]);
        match self.call(Method::GET, url, None::<&()>).await {
            Ok(progress) => Ok(Some(progress)),
            Err(e) if e.is_not_found() => {
                // Tell "no such route" from "no such image".
                self.image_get(id).await?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn image_call(
        &self,
        method: Method,
        id: &str,
        body: Option<&ImageUpdate>,
    ) -> Result<Image> {
        let url = self.url(&["v2", "images", id]);
        let answer = self.send(method, url, body).await?;
        envelope(&answer, None)
    }
}

/// `{"image": …}`, read leniently (see [`complete_image`]).
fn envelope(answer: &crate::client::Answer, kind: Option<&str>) -> Result<Image> {
    let mut body: Value = decode(answer)?;
    let mut image = body
        .get_mut("image")
        .map(Value::take)
        .unwrap_or(Value::Null);
    complete_image(&mut image, kind);
    from_value(answer, image)
}

fn from_value<T: serde::de::DeserializeOwned>(
    answer: &crate::client::Answer,
    value: Value,
) -> Result<T> {
    serde_json::from_value(value).map_err(|e| crate::Error::Decode {
        url: answer.url.to_string(),
        status: answer.status.as_u16(),
        detail: e.to_string(),
    })
}

/// DigitalOcean answers a create with "a subset of the standard image attributes" (no
/// `public`, `slug`, sizes), and its documented GET and PUT examples lack `type`; the shared
/// `Image` type needs them, so the ones absent are filled with what they mean for such an
/// image: not public, no slug, sizes unknown, no regions or tags yet.
fn complete_image(image: &mut Value, kind: Option<&str>) {
    let Some(map) = image.as_object_mut() else {
        return;
    };
    let defaults = [
        ("public", Value::Bool(false)),
        ("slug", Value::Null),
        ("min_disk_size", Value::Null),
        ("size_gigabytes", Value::Null),
        ("regions", Value::Array(vec![])),
        ("distribution", Value::String("Unknown".into())),
    ];
    for (key, value) in defaults {
        map.entry(key).or_insert(value);
    }
    if let Some(kind) = kind {
        map.entry("type").or_insert(Value::String(kind.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digitalocean_create_example_reads() {
        // The 202 example of the specification, verbatim.
        let mut v: Value = serde_json::from_str(
            r#"{"created_at":"2018-09-20T19:28:00Z","description":"Cloud-optimized image w/ small footprint",
            "distribution":"Ubuntu","error_message":"","id":38413969,"name":"ubuntu-18.04-minimal","regions":[],
            "type":"custom","tags":["base-image","prod"],"status":"NEW"}"#,
        )
        .unwrap();
        complete_image(&mut v, Some("custom"));
        let image: Image = serde_json::from_value(v).unwrap();
        assert_eq!(image.id, 38413969);
        assert!(!image.public && image.slug.is_none());
    }
}
