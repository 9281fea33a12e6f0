//! The SVG timeline end to end: install a `ChromeTrace` (its own test binary, since hooks are
//! process-wide), run frames of named jobs, and check that the SVG of one frame is well-formed
//! and has exactly one job bar per job that frame ran; the JSON has the frame marks.

use jobsys::{JobSystem, job_meta};
use jobsys_profiling::ChromeTrace;

/// A minimal well-formedness check: every tag closes in order, attributes are quoted, the root
/// is one `<svg>` element.
fn check_well_formed(svg: &str) {
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = svg;
    let mut roots = 0;
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').expect("unclosed tag") + open;
        let tag = &rest[open + 1..close];
        assert!(!tag.contains('<'), "a '<' inside a tag: {tag}");
        assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes: {tag}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop(), Some(name.trim()), "mismatched </{name}>");
        } else if !tag.ends_with('/') {
            let name = tag.split_whitespace().next().unwrap();
            if stack.is_empty() {
                roots += 1;
            }
            stack.push(name);
        }
        // Text between tags may not hold a raw '&' that starts no entity.
        let text_end = rest[close + 1..]
            .find('<')
            .map_or(rest.len(), |t| t + close + 1);
        let text = &rest[close + 1..text_end];
        for (i, _) in text.match_indices('&') {
            assert!(
                ["&lt;", "&gt;", "&amp;", "&quot;", "&apos;"]
                    .iter()
                    .any(|e| text[i..].starts_with(e)),
                "raw '&' in text: {text}"
            );
        }
        rest = &rest[close + 1..];
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    assert_eq!(roots, 1);
    assert!(svg.trim_start().starts_with("<svg"));
}

#[test]
fn an_svg_of_one_frame_has_one_bar_per_job_of_the_frame() {
    let trace: &'static ChromeTrace = Box::leak(Box::new(ChromeTrace::new(2, 1 << 16)));
    assert!(
        trace.install(),
        "hooks were already installed in this process"
    );
    let jobs = JobSystem::builder().workers(2).build().unwrap();
    let mut data = vec![0u64; 4096];
    let mut frames = Vec::new();
    jobs.run(|ctx| {
        for _ in 0..3 {
            frames.push(ctx.frame(|f| {
                ctx.scope(|s| {
                    for (i, chunk) in data.chunks_mut(256).enumerate() {
                        let meta = if i % 2 == 0 {
                            job_meta!("physics <a&b>")
                        } else {
                            job_meta!("animation")
                        };
                        s.spawn_with(meta, move |_| chunk.iter_mut().for_each(|x| *x += 1));
                    }
                });
                f.later_with(ctx, job_meta!("render"), |_| {});
                f.index()
            }));
        }
    });
    drop(jobs);
    assert_eq!(trace.dropped(), 0);

    let mut svg = Vec::new();
    trace.write_svg(&mut svg, Some(frames[1])).unwrap();
    let svg = String::from_utf8(svg).unwrap();
    check_well_formed(&svg);
    // 16 scope jobs and the later job began inside frame 1; nothing else did.
    let bars = |class: &str| svg.matches(&format!("class=\"{class}\"")).count();
    assert_eq!(bars("job"), 17, "{svg}");
    assert_eq!(svg.matches("data-job=\"render\"").count(), 1);
    assert!(svg.contains("data-job=\"physics &lt;a&amp;b&gt;\""));
    assert!(svg.contains(&format!(">frame {}<", frames[1])));
    assert!(svg.contains(&format!(">{} retired<", frames[1])));

    // The whole trace: every job of the three frames has its bar (the root job began before the
    // first job bar and counts too).
    let mut all = Vec::new();
    trace.write_svg(&mut all, None).unwrap();
    let all = String::from_utf8(all).unwrap();
    check_well_formed(&all);
    assert_eq!(all.matches("class=\"job\"").count(), 3 * 17 + 1);

    // A frame that never ran is an error, not an empty picture.
    let err = trace.write_svg(std::io::sink(), Some(99)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);

    // The JSON carries the frame marks.
    let mut json = Vec::new();
    trace.write_json(&mut json).unwrap();
    let json = String::from_utf8(json).unwrap();
    for &f in &frames {
        assert!(
            json.contains(&format!("\"name\":\"frame {f} begin\"")),
            "{f}"
        );
        assert!(
            json.contains(&format!("\"name\":\"frame {f} retired\"")),
            "{f}"
        );
    }
}

#[test]
fn zones_and_lock_waits_have_their_own_bars() {
    use jobsys::profile::ProfileHooks;
    // A private trace fed by calling the hooks (the installed one belongs to the test above).
    let trace = ChromeTrace::new(1, 64);
    let job = job_meta!("physics");
    trace.fiber_enter(0, 1);
    trace.job_begin(0, job);
    trace.zone_begin(0, 1, "broadphase <1>");
    trace.lock_wait_begin(0, "contacts", 0x10);
    trace.lock_obtained(0, "contacts", 0x10);
    trace.zone_end(0, 1, "broadphase <1>");
    trace.job_end(0, job);
    trace.fiber_leave(0, 1);

    let mut svg = Vec::new();
    trace.write_svg(&mut svg, None).unwrap();
    let svg = String::from_utf8(svg).unwrap();
    check_well_formed(&svg);
    let bars = |class: &str| svg.matches(&format!("class=\"{class}\"")).count();
    assert_eq!(
        (bars("job"), bars("zone"), bars("lock")),
        (1, 1, 1),
        "{svg}"
    );
    assert!(svg.contains("data-zone=\"broadphase &lt;1&gt;\""));
    // Lock waits are hatched.
    assert!(svg.contains("data-lock=\"contacts\""));
    assert!(svg.contains("fill=\"url(#lock-wait)\""));
    assert!(svg.contains("<pattern id=\"lock-wait\""));
}

/// Names are arbitrary `&'static str`s: control characters, which XML 1.0 allows in no form
/// (not even as a character reference), must not reach the SVG, whose parsers would reject
/// the whole file. The JSON escapes them; the SVG replaces them.
#[test]
fn control_characters_in_names_do_not_reach_the_svg() {
    use jobsys::profile::ProfileHooks;
    let trace = ChromeTrace::new(1, 64);
    let meta = job_meta!("job\u{1}name");
    trace.fiber_enter(0, 1);
    trace.job_begin(0, meta);
    trace.zone_begin(0, 1, "zone\u{7}\u{1b}[31m");
    trace.lock_wait_begin(0, "lock\u{0}", 0x10);
    trace.lock_obtained(0, "lock\u{0}", 0x10);
    trace.zone_end(0, 1, "zone\u{7}\u{1b}[31m");
    trace.job_end(0, meta);
    trace.fiber_leave(0, 1);
    let mut svg = Vec::new();
    trace.write_svg(&mut svg, None).unwrap();
    let svg = String::from_utf8(svg).unwrap();
    check_well_formed(&svg);
    let bad: Vec<char> = svg
        .chars()
        .filter(|&c| (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{fffe}')
        .collect();
    assert!(bad.is_empty(), "characters XML forbids: {bad:?}");
    for class in ["class=\"job\"", "class=\"zone\"", "class=\"lock\""] {
        assert_eq!(svg.matches(class).count(), 1, "{class}");
    }
}
