//! A body with neither a length nor chunked encoding ends when the server closes the connection,
//! so a server that dies halfway delivers what looks like a whole file. The inspector must tell
//! from the image's own tables that it is not.

use tidepool_import::{image_key, import_image, Failure, FailureKind, ImportError, Progress};
use tidepool_testkit::files_under;
use tokio_util::sync::CancellationToken;

use crate::common::{serve, temp_blobs, test_limits};

#[tokio::test]
async fn half_an_image_sent_without_a_length_is_refused_as_truncated() {
    let addr = serve().await;
    for format in ["qcow2", "vhdx", "vdi", "vmdk"] {
        let (dir, blobs) = temp_blobs();
        let key = image_key(1, &format!("{:032x}", rand::random::<u128>()));
        let res = import_image(
            &format!("http://{addr}/unframed/disk.{format}"),
            &key,
            &blobs,
            &test_limits(),
            &Progress::new(),
            CancellationToken::new(),
        )
        .await;
        let err = match res {
            Ok(o) => panic!("{format}: half the image was stored as {o:?}"),
            Err(e) => e,
        };
        let ImportError::Abort(Failure {
            kind: FailureKind::Refused,
            message,
        }) = &err
        else {
            panic!("{format}: {err:?}");
        };
        assert!(
            // The header's own offsets (vdi's allocated block count) may speak first.
            message.contains(&format!("{format} image is truncated: ")),
            "{format}: {message}"
        );
        assert!(
            message.ends_with("; upload the complete file"),
            "{format}: {message}"
        );
        assert_eq!(blobs.head(&key).await.unwrap(), None, "{format}");
        let left = files_under(dir.path());
        assert!(left.is_empty(), "{format}: a refused import left {left:?}");
    }
}
