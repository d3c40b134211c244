use crate::{Distribution, ImageStatus, ImageType, Region};
use serde::{Deserialize, Deserializer, Serialize};

/// An image, with the 14 attributes of the specification in DigitalOcean's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// Unique numeric identifier.
    pub id: u64,
    /// Display name.
    pub name: String,
    /// The distribution; `Unknown` when none was given or the name was not recognised.
    pub distribution: Distribution,
    /// Set for public images only; private images are addressed by `id`.
    pub slug: Option<String>,
    /// Whether every account can see the image.
    pub public: bool,
    /// Regions where the image is available; empty until an import completes.
    pub regions: Vec<Region>,
    /// RFC 3339 UTC to the second, e.g. `2020-05-04T22:23:02Z`.
    pub created_at: String,
    /// The kind of image (`custom` for imported ones).
    #[serde(rename = "type")]
    pub kind: ImageType,
    /// Smallest disk, in whole GB, that can hold the image; null until known.
    pub min_disk_size: Option<u64>,
    /// Stored size in GB; null until known.
    pub size_gigabytes: Option<f64>,
    /// Free-form description; empty when none was given.
    #[serde(default)]
    pub description: String,
    /// Tags; DigitalOcean may send `null`, which reads as no tags.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub tags: Vec<String>,
    /// Lifecycle state.
    pub status: ImageStatus,
    /// Why an import failed; empty otherwise.
    #[serde(default)]
    pub error_message: String,
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// `{"image": …}`: the body of get, create and update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageEnvelope {
    /// The image.
    pub image: Image,
}

/// The body of `POST /v2/images`: a custom image to import from `url`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageCreate {
    /// Display name.
    pub name: String,
    /// Where to fetch the image (raw, qcow2, vhdx, vdi or vmdk; gzip or bzip2 allowed).
    pub url: String,
    /// Region the image is first available in.
    pub region: Region,
    /// The distribution; any unknown name is stored as `Unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<Distribution>,
    /// Free-form description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tags to apply; needs the `tag:create` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// The body of `PUT /v2/images/{id}`. Every field is optional; `distribution` and
/// `description` may only change on custom images.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageUpdate {
    /// New display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New distribution (custom images only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<Distribution>,
    /// New description (custom images only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Progress of an import: `GET /v2/images/{id}/import`, a tidepool extension that
/// DigitalOcean does not have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportProgress {
    /// The image being imported.
    pub image_id: u64,
    /// The image's status.
    pub status: ImageStatus,
    /// Bytes read from the URL so far (compressed bytes, as the server sends them).
    pub bytes_read: u64,
    /// What the server announced as the length, when it did.
    pub bytes_total: Option<u64>,
    /// Why the import failed; empty otherwise.
    #[serde(default)]
    pub error_message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_serialises_all_fourteen_fields_in_order() {
        let image = Image {
            id: 7,
            name: "n".into(),
            distribution: Distribution::Ubuntu,
            slug: None,
            public: false,
            regions: vec![],
            created_at: "2020-05-04T22:23:02Z".into(),
            kind: ImageType::Custom,
            min_disk_size: None,
            size_gigabytes: None,
            description: String::new(),
            tags: vec![],
            status: ImageStatus::New,
            error_message: String::new(),
        };
        let json = serde_json::to_string(&image).unwrap();
        assert_eq!(
            json,
            r#"{"id":7,"name":"n","distribution":"Ubuntu","slug":null,"public":false,"regions":[],"created_at":"2020-05-04T22:23:02Z","type":"custom","min_disk_size":null,"size_gigabytes":null,"description":"","tags":[],"status":"NEW","error_message":""}"#
        );
    }

    #[test]
    fn image_reads_null_tags_as_empty() {
        let json = r#"{"id":1,"name":"a","distribution":"Debian","slug":"debian-12-x64","public":true,
            "regions":["nyc3"],"created_at":"2024-01-01T00:00:00Z","type":"snapshot","min_disk_size":15,
            "size_gigabytes":0.5,"description":"","tags":null,"status":"available","error_message":""}"#;
        let image: Image = serde_json::from_str(json).unwrap();
        assert!(image.tags.is_empty());
        assert_eq!(image.regions, vec![Region::Nyc3]);
    }
}
