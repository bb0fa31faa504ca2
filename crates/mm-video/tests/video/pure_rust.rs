//! The readers that need no ffmpeg (Y4M, GIF, a frame folder) and clip sampling, on videos
//! this test writes: a grey background with a coloured 8x8 block that moves 2 px per frame.

use std::path::Path;

use burn::backend::NdArray;
use image::{Delay, Frame, Rgb, RgbImage, Rgba, RgbaImage};
use mm_video::y4m::write_y4m;
use mm_video::{
    ClipSpec, Ffmpeg, FrameRequest, Step, Video, VideoError, channels_first, clips_to_tensor,
};

const W: u32 = 32;
const H: u32 = 24;

/// Frame `t`: the block's top-left corner is at (2t, 4), on even coordinates so 4:2:0 chroma
/// averaging stays within one colour.
fn frame(t: u32) -> RgbImage {
    RgbImage::from_fn(W, H, |x, y| {
        let inside = (2 * t..2 * t + 8).contains(&x) && (4..12).contains(&y);
        if inside {
            Rgb([220, 40, 30])
        } else {
            Rgb([120, 120, 120])
        }
    })
}

fn frames(n: u32) -> Vec<RgbImage> {
    (0..n).map(frame).collect()
}

fn max_diff(a: &RgbImage, b: &RgbImage) -> i32 {
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| (*x as i32 - *y as i32).abs())
        .max()
        .unwrap()
}

fn write_y4m_file(path: &Path, n: u32, fps: f64) {
    let mut f = std::fs::File::create(path).unwrap();
    write_y4m(&mut f, &frames(n), fps).unwrap();
}

#[test]
fn y4m_round_trips_frames_and_rate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("moving.y4m");
    write_y4m_file(&path, 10, 24.0);
    let video = Video::open(&path, &Ffmpeg::default()).unwrap();
    let info = video.info();
    assert_eq!((info.width, info.height, info.frames), (W, H, 10));
    assert_eq!(info.fps, 24.0);
    let request = FrameRequest {
        start_s: 0.0,
        max_frames: 100,
        fps: None,
        size: None,
    };
    let got = video.frames(&request).unwrap();
    assert_eq!(got.len(), 10);
    for (t, f) in got.iter().enumerate() {
        assert!(max_diff(f, &frame(t as u32)) <= 3, "frame {t}");
    }
}

#[test]
fn corrupt_y4m_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.y4m");
    write_y4m_file(&path, 3, 24.0);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let err = Video::open(&path, &Ffmpeg::default()).unwrap_err();
    assert!(matches!(err, VideoError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().contains("cut.y4m") && err.to_string().contains("truncated"),
        "{err}"
    );

    let bad = dir.path().join("bad.y4m");
    std::fs::write(&bad, b"RIFF....WAVEfmt ").unwrap();
    let err = Video::open(&bad, &Ffmpeg::default()).unwrap_err();
    assert!(err.to_string().contains("bad.y4m"), "{err}");
    let missing = Video::open(dir.path().join("none.y4m"), &Ffmpeg::default()).unwrap_err();
    assert!(
        matches!(missing, VideoError::Unreadable { .. }),
        "{missing}"
    );
}

#[test]
fn gif_frames_and_rate_come_from_its_delays() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("moving.gif");
    {
        let file = std::fs::File::create(&path).unwrap();
        let mut enc = image::codecs::gif::GifEncoder::new(file);
        for f in frames(6) {
            let rgba = RgbaImage::from_fn(W, H, |x, y| {
                let p = f.get_pixel(x, y).0;
                Rgba([p[0], p[1], p[2], 255])
            });
            enc.encode_frame(Frame::from_parts(
                rgba,
                0,
                0,
                Delay::from_numer_denom_ms(40, 1),
            ))
            .unwrap();
        }
    }
    let video = Video::open(&path, &Ffmpeg::default()).unwrap();
    assert_eq!(video.info().frames, 6);
    assert!(
        (video.info().fps - 25.0).abs() < 1e-6,
        "{}",
        video.info().fps
    );
    let got = video
        .frames(&FrameRequest {
            start_s: 0.08,
            max_frames: 2,
            fps: None,
            size: None,
        })
        .unwrap();
    assert_eq!(max_diff(&got[0], &frame(2)), 0);
    assert_eq!(max_diff(&got[1], &frame(3)), 0);
}

#[test]
fn a_still_png_is_one_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("still.png");
    frame(3).save(&path).unwrap();
    let video = Video::open(&path, &Ffmpeg::default()).unwrap();
    assert_eq!(video.info().frames, 1);
    let request = FrameRequest {
        start_s: 0.0,
        max_frames: 4,
        fps: None,
        size: None,
    };
    assert_eq!(max_diff(&video.frames(&request).unwrap()[0], &frame(3)), 0);
}

#[test]
fn frame_folder_at_a_given_rate() {
    let dir = tempfile::tempdir().unwrap();
    for (t, f) in frames(5).iter().enumerate() {
        f.save(dir.path().join(format!("{t:04}.png"))).unwrap();
    }
    std::fs::write(dir.path().join("notes.txt"), "not a frame").unwrap();
    let video = Video::open_folder(dir.path(), 10.0).unwrap();
    assert_eq!(video.info().frames, 5);
    assert_eq!(video.info().duration_s, 0.5);
    let empty = tempfile::tempdir().unwrap();
    let err = Video::open_folder(empty.path(), 10.0).unwrap_err();
    assert!(matches!(err, VideoError::NoVideoStream { .. }), "{err}");
}

#[test]
fn clips_at_a_stride_become_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("moving.y4m");
    write_y4m_file(&path, 12, 24.0);
    let video = Video::open(&path, &Ffmpeg::default()).unwrap();
    let spec = ClipSpec {
        frames: 4,
        step: Step::Stride(2),
        width: 16,
        height: 24,
        audio_rate: None,
    };
    // Frames 1, 3, 5, 7 (start 1/24 s), kept at full height and cropped to the centre 16 px.
    let clip = spec.sample(&video, 1.0 / 24.0).unwrap();
    assert_eq!(clip.fps, 12.0);
    assert_eq!(clip.frames.len(), 4);
    for (k, f) in clip.frames.iter().enumerate() {
        let expected = image::imageops::crop_imm(&frame(1 + 2 * k as u32), 8, 0, 16, 24).to_image();
        assert!(max_diff(f, &expected) <= 3, "clip frame {k}");
    }
    // The video ends before a clip at 0.4 s would.
    let err = spec.sample(&video, 0.4).unwrap_err();
    assert!(err.to_string().contains("frames a clip"), "{err}");
    // The audio of a Y4M cannot be had.
    let with_audio = ClipSpec {
        audio_rate: Some(16_000),
        ..spec.clone()
    };
    let err = with_audio.sample(&video, 0.0).unwrap_err();
    assert!(matches!(err, VideoError::NoAudioStream { .. }), "{err}");

    let clips = vec![clip.clone(), spec.sample(&video, 0.0).unwrap()];
    let x = clips_to_tensor::<NdArray>(&clips, [0.0; 3], [1.0; 3], &Default::default()).unwrap();
    assert_eq!(x.dims(), [2, 4, 3, 24, 16]);
    let v = x.clone().into_data().to_vec::<f32>().unwrap();
    // Clip 0, frame 0, red channel, pixel (0, 0) is background grey.
    assert!((v[0] - 120.0 / 255.0).abs() < 4.0 / 255.0);
    assert_eq!(channels_first(x).dims(), [2, 3, 4, 24, 16]);
}

/// Found by the `y4m` fuzz target: a header field whose one-character tag is several bytes
/// long made the reader slice inside a character and panic.
#[test]
fn a_header_tag_outside_ascii_is_an_error_not_a_panic() {
    let bytes = "YUV4MPEG2 W4 \u{36a}2 F25:1\nFRAME\n".as_bytes();
    let err = mm_video::y4m::Y4mReader::new(std::io::Cursor::new(bytes), Path::new("odd.y4m"))
        .err()
        .expect("no height: an error");
    assert!(err.to_string().contains("frame size 4x0"), "{err}");
}
