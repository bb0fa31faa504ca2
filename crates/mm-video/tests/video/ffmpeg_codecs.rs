//! Real codecs through ffmpeg (CI installs Debian's `ffmpeg`; README, "Tests"): files made by
//! ffmpeg's own test sources in four containers, probed and decoded back, plus the errors a
//! user meets (no ffmpeg, no file, not a video, no video stream).

use std::path::{Path, PathBuf};
use std::process::Command;

use mm_video::tasks::load_strips;
use mm_video::y4m::write_y4m;
use mm_video::{ClipSpec, Ffmpeg, FrameRequest, Step, Video, VideoError};

/// Writes a 2 s, 24 fps, 64x48 solid red video with a 440 Hz tone into `dir/name`.
fn make(dir: &Path, name: &str, codecs: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(["-f", "lavfi", "-i", "color=c=red:s=64x48:r=24:d=2"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100:duration=2",
        ])
        .args(codecs)
        .arg(&path)
        .status()
        .expect("these tests need ffmpeg on the PATH (apt-get install ffmpeg)");
    assert!(status.success(), "ffmpeg could not write {name}");
    path
}

/// Zero crossings per second / 2 of a mono signal: its frequency for a pure tone.
fn tone_hz(samples: &[f32], rate: u32) -> f64 {
    let crossings = samples
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count();
    crossings as f64 / 2.0 / (samples.len() as f64 / rate as f64)
}

#[test]
fn four_containers_probe_and_decode() {
    let dir = tempfile::tempdir().unwrap();
    let ffmpeg = Ffmpeg::default();
    let files = [
        make(
            dir.path(),
            "a.mp4",
            &["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"],
        ),
        make(
            dir.path(),
            "a.mkv",
            &[
                "-c:v",
                "libx264",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "libvorbis",
            ],
        ),
        make(
            dir.path(),
            "a.webm",
            &["-c:v", "libvpx-vp9", "-c:a", "libopus"],
        ),
        make(
            dir.path(),
            "a.avi",
            &["-c:v", "mpeg4", "-q:v", "2", "-c:a", "pcm_s16le"],
        ),
    ];
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let video = Video::open(path, &ffmpeg).unwrap();
        let info = video.info();
        assert_eq!((info.width, info.height), (64, 48), "{name}");
        assert!((info.fps - 24.0).abs() < 1e-6, "{name}: fps {}", info.fps);
        assert!(
            (info.frames as i64 - 48).abs() <= 1,
            "{name}: {} frames",
            info.frames
        );
        assert!(
            (info.duration_s - 2.0).abs() < 0.1,
            "{name}: {} s",
            info.duration_s
        );
        assert!(
            info.audio_sample_rate.is_some(),
            "{name}: no audio stream found"
        );

        let all = video
            .frames(&FrameRequest {
                start_s: 0.0,
                max_frames: 1000,
                fps: None,
                size: None,
            })
            .unwrap();
        assert!(
            (all.len() as i64 - 48).abs() <= 1,
            "{name}: decoded {}",
            all.len()
        );
        let px = all[10].get_pixel(32, 24).0;
        assert!(
            px[0] > 230 && px[1] < 30 && px[2] < 30,
            "{name}: centre pixel {px:?}"
        );

        // 8 frames at 2x stride from 0.5 s, scaled and cropped to 32x32, with 16 kHz audio.
        let spec = ClipSpec {
            frames: 8,
            step: Step::Stride(2),
            width: 32,
            height: 32,
            audio_rate: Some(16_000),
        };
        let clip = spec.sample(&video, 0.5).unwrap();
        assert_eq!(clip.frames.len(), 8, "{name}");
        assert_eq!(clip.frames[0].dimensions(), (32, 32), "{name}");
        let audio = clip.audio.unwrap();
        // 8 frames at 12 fps span 2/3 s: 10,667 samples at 16 kHz (codec padding aside).
        assert!(
            (audio.len() as i64 - 10_667).abs() < 400,
            "{name}: {} samples",
            audio.len()
        );
        let hz = tone_hz(&audio, 16_000);
        assert!((hz - 440.0).abs() < 10.0, "{name}: tone at {hz} Hz");
    }
}

#[test]
fn ffmpeg_and_the_pure_rust_y4m_reader_agree() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ramp.y4m");
    let frames: Vec<image::RgbImage> = (0..4)
        .map(|t| {
            image::RgbImage::from_fn(16, 16, |x, y| {
                image::Rgb([(x * 16) as u8, (y * 16) as u8, (t * 60) as u8])
            })
        })
        .collect();
    write_y4m(&mut std::fs::File::create(&path).unwrap(), &frames, 10.0).unwrap();
    let request = FrameRequest {
        start_s: 0.0,
        max_frames: 4,
        fps: None,
        size: None,
    };
    let ours = Video::open(&path, &Ffmpeg::default())
        .unwrap()
        .frames(&request)
        .unwrap();
    let ffmpeg = Ffmpeg::default();
    let info = ffmpeg.probe(&path).unwrap();
    assert_eq!(info.frames, 4);
    let theirs = ffmpeg.frames(&path, &info, 0.0, 4, None, None).unwrap();
    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(&theirs) {
        let worst = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| (*x as i32 - *y as i32).abs())
            .max()
            .unwrap();
        // swscale rounds its fixed-point BT.601 and interpolates chroma differently at edges.
        assert!(worst <= 12, "max channel difference {worst}");
    }
}

#[test]
fn errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let ffmpeg = Ffmpeg::default();

    let err = Video::open(dir.path().join("none.mp4"), &ffmpeg).unwrap_err();
    assert!(matches!(err, VideoError::Unreadable { .. }), "{err}");
    assert!(err.to_string().contains("none.mp4"), "{err}");

    let junk = dir.path().join("junk.mp4");
    std::fs::write(&junk, b"this is not a video at all").unwrap();
    let err = Video::open(&junk, &ffmpeg).unwrap_err();
    assert!(err.to_string().contains("junk.mp4"), "{err}");

    let wav = dir.path().join("tone.wav");
    let ok = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=0.5",
        ])
        .arg(&wav)
        .status()
        .unwrap();
    assert!(ok.success());
    let err = Video::open(&wav, &ffmpeg).unwrap_err();
    assert!(matches!(err, VideoError::NoVideoStream { .. }), "{err}");

    let silent = make(dir.path(), "silent.mp4", &["-an", "-c:v", "libx264"]);
    let video = Video::open(&silent, &ffmpeg).unwrap();
    let err = video.audio(16_000, 0.0, 1.0).unwrap_err();
    assert!(matches!(err, VideoError::NoAudioStream { .. }), "{err}");

    let nowhere = Ffmpeg::at("/nonexistent/bin/ffmpeg");
    let err = Video::open(&silent, &nowhere).unwrap_err();
    assert!(matches!(err, VideoError::FfmpegMissing { .. }), "{err}");
    assert!(err.to_string().contains("apt-get install ffmpeg"), "{err}");
}

/// A manifest's windows of one film decode in parallel into strips in manifest order, each
/// with the frames of its own seconds; a label outside the classes and a split with no clips
/// are named.
#[test]
fn manifest_windows_decode_in_order_in_parallel() {
    let dir = tempfile::tempdir().unwrap();
    // 4 s at 24 fps whose frame n is gray at level 2n: a window's frames tell its start.
    let film = dir.path().join("ramp.mp4");
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi"])
        .args(["-i", "nullsrc=s=32x32:r=24:d=4,geq=lum='2*N':cb=128:cr=128"])
        .args(["-c:v", "mpeg4", "-q:v", "2", "-pix_fmt", "yuv420p"])
        .arg(&film)
        .status()
        .expect("these tests need ffmpeg on the PATH (apt-get install ffmpeg)");
    assert!(status.success());
    let manifest = dir.path().join("film.jsonl");
    let line = |start: u32, split: &str, label: &str| {
        format!(
            "{{\"video\":\"ramp.mp4\",\"start\":{start}.0,\"end\":{}.0,\"split\":\"{split}\",\"label\":\"{label}\"}}\n",
            start + 1
        )
    };
    let text = [
        line(0, "train", "a"),
        line(1, "train", "b"),
        line(2, "train", "a"),
        line(3, "test", "b"),
    ]
    .concat();
    std::fs::write(&manifest, text).unwrap();
    let ffmpeg = Ffmpeg::default();
    let classes = ["a".to_string(), "b".to_string()];
    let strips = load_strips(&manifest, "train", 16, &classes, &ffmpeg).unwrap();
    assert_eq!(strips.len(), 3);
    let labels: Vec<Option<usize>> = strips.iter().map(|s| s.label).collect();
    assert_eq!(labels, [Some(0), Some(1), Some(0)]);
    for (k, strip) in strips.iter().enumerate() {
        assert_eq!(strip.frames.len(), 24, "window {k}");
        let first = &strip.frames[0];
        let mean = first.pixels().map(|p| f64::from(p.0[1])).sum::<f64>() / 256.0;
        // Frame 24k is luma 48k: RGB about 1.16 (48k - 16) after limited-range expansion.
        let expected = ((48.0 * k as f64 - 16.0) * 255.0 / 219.0).max(0.0);
        assert!(
            (mean - expected).abs() < 8.0,
            "window {k}: first frame at {mean}, expected about {expected}"
        );
    }
    let unknown = ["a".to_string()];
    let err = load_strips(&manifest, "train", 16, &unknown, &ffmpeg).unwrap_err();
    assert!(err.to_string().contains("label `b`"), "{err}");
    let err = load_strips(&manifest, "val", 16, &classes, &ffmpeg).unwrap_err();
    assert!(err.to_string().contains("no `val` clips"), "{err}");
}
