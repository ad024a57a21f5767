//! The periodic registry gc in a running controller: started with a 1 s interval and no
//! grace (`PAAS_GC_INTERVAL_SECS`, `PAAS_GC_GRACE_SECS`, set in this test process only, so
//! no other journey's controller gets them), a blob pushed without any manifest
//! disappears on its own while the stack stays.

use std::time::{Duration, Instant};

use paas_e2e::{require_root, Paas};

#[test]
fn the_leader_collects_an_unreferenced_blob_on_its_timer() {
    if !require_root() {
        return;
    }
    std::env::set_var("PAAS_GC_INTERVAL_SECS", "1");
    std::env::set_var("PAAS_GC_GRACE_SECS", "0");
    let paas = Paas::start();
    let client = paas.client();
    let blob = b"im4: a blob no manifest references".to_vec();
    let digest = {
        use std::io::Write;
        let mut child = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&blob).unwrap();
        let out = child.wait_with_output().unwrap();
        let hex = String::from_utf8_lossy(&out.stdout);
        format!("sha256:{}", hex.split_whitespace().next().unwrap())
    };
    let resp = client
        .post(format!(
            "{}/v2/im4/orphan/blobs/uploads/?digest={digest}",
            paas.api
        ))
        .bearer_auth(&paas.token)
        .header("content-type", "application/octet-stream")
        .body(blob)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "{}", resp.text().unwrap());
    let url = format!("{}/v2/im4/orphan/blobs/{digest}", paas.api);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = client
            .head(&url)
            .bearer_auth(&paas.token)
            .send()
            .unwrap()
            .status()
            .as_u16();
        if status == 404 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            Instant::now() < deadline,
            "the unreferenced blob was not collected within 30 s:\n{}",
            paas.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        paas.log().contains("periodic registry gc"),
        "{}",
        paas.log()
    );
    let resp = client
        .get(format!("{}/v2/stacks/tiny/manifests/latest", paas.api))
        .bearer_auth(&paas.token)
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "the stack was collected");
}
