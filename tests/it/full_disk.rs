//! A full disk and a read-only disk, made for real: the data dir sits on its own small tmpfs
//! (this needs root, as CI and the development machines run; elsewhere the test says it did
//! not run and passes). Tries: every reading command on a full disk and on a read-only one,
//! the server starting and proxying on a full disk, and writing commands refused with the
//! cause named (`no space left on device`, `read-only file system`).

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::mock::{Mock, Reply};
use support::{Proxy, user};

/// A tmpfs of `size` mounted on a new directory; unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("full_disk: not root, cannot mount a tmpfs; not run");
            return None;
        }
        let dir = support::temp_dir("disk");
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&dir)
            .status()
            .expect("running mount")
            .success();
        assert!(ok, "root could not mount a tmpfs on {}", dir.display());
        Some(SmallDisk(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Writes filler until the file system says it is full.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.0.join("filler")).unwrap();
        let block = vec![0u8; 64 * 1024];
        loop {
            match f.write_all(&block) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        let _ = f.flush();
    }

    fn remount_read_only(&self) {
        let ok = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remounting read-only");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_full_disk_still_reads_starts_and_proxies_and_names_itself() {
    let Some(disk) = SmallDisk::mount("16m") else {
        return;
    };
    let data = disk.path().join("data");
    let m = Mock::start(|_| Reply::completion("served on a full disk"));
    // Set up the store while there is room, then fill the disk.
    let mut p = Proxy::builder()
        .dir(&data)
        .upstream("groq", &m.base())
        .key("groq", "gsk_full_disk_key")
        .start();
    let token = p.token.clone();
    assert_eq!(p.stop(), Some(0));
    disk.fill();

    let list = support::cli(&data, &p.env, &["keys", "list"], "");
    assert!(list.status.success(), "{}", stderr(&list));
    assert!(String::from_utf8_lossy(&list.stdout).contains("groq"));
    let shown = support::cli(&data, &p.env, &["token"], "");
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), token);

    let add = support::cli(&data, &p.env, &["keys", "add", "cerebras"], "csk-no-room");
    assert_eq!(add.status.code(), Some(2), "{}", stderr(&add));
    assert!(
        stderr(&add).contains("no space left on device"),
        "{}",
        stderr(&add)
    );
    assert!(!stderr(&add).contains("owner/mode"), "{}", stderr(&add));

    let p = Proxy::spawn(data.clone(), p.env.clone());
    assert!(p.log_text().contains("is full"), "{}", p.log_text());
    for _ in 0..3 {
        let r = p.chat(&user("hi"));
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().contains("served on a full disk"));
    }
}

#[test]
fn a_read_only_disk_still_reads_and_names_itself() {
    let Some(disk) = SmallDisk::mount("16m") else {
        return;
    };
    let data = disk.path().join("data");
    let env = vec![("FREELLMAPI_LOG".to_string(), "info".to_string())];
    let add = support::cli(
        &data,
        &env,
        &["keys", "add", "groq", "--label", "ro"],
        "gsk_ro_key",
    );
    assert!(add.status.success(), "{}", stderr(&add));
    let token = support::cli(&data, &env, &["token"], "");
    let token = String::from_utf8_lossy(&token.stdout).trim().to_string();
    disk.remount_read_only();

    let list = support::cli(&data, &env, &["keys", "list"], "");
    assert!(list.status.success(), "{}", stderr(&list));
    assert!(String::from_utf8_lossy(&list.stdout).contains("ro"));
    let shown = support::cli(&data, &env, &["token"], "");
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), token);

    let add = support::cli(&data, &env, &["keys", "add", "cerebras"], "csk-ro");
    assert_eq!(add.status.code(), Some(2), "{}", stderr(&add));
    assert!(stderr(&add).contains("read-only"), "{}", stderr(&add));
}
