//! What people capture of a request — a curl command line, a raw HTTP request, a HAR file —
//! read back into [`HttpRequest`]s (`apiconform repro import`). No I/O: the caller reads the
//! file (bounded) and passes its text. Nothing here judges or signs; the old signature stays in
//! the bytes until the caller drops it by re-signing the case the request asks for.

use super::HttpRequest;

/// One request found in a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// Where in the capture it was: `line 1`, `entry 3`.
    pub at: String,
    /// The request as captured (its `Host` header from the URL when the capture had none).
    pub request: HttpRequest,
}

/// The kinds of capture read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// A `curl ...` command line (a shell's quoting, `\` line continuations).
    Curl,
    /// A raw HTTP/1.1 request: request line, headers, blank line, body.
    Http,
    /// A HAR file (`log.entries[].request`), one request per entry.
    Har,
    /// tencentcloud-sdk-python's debug log (`set_stream_logger(level=DEBUG)`): each
    /// `SendRequest: Host: …` block.
    TencentSdkLog,
    /// aliyun-python-sdk-core's debug log (`set_stream_logger(log_level=DEBUG)`): each
    /// `Request received. Product:… Endpoint:… Params: {…}` line.
    AlibabaSdkLog,
}

impl Kind {
    /// `curl`, `http`, `har`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Curl => "curl",
            Kind::Http => "http",
            Kind::Har => "har",
            Kind::TencentSdkLog => "tencentcloud-sdk-python debug log",
            Kind::AlibabaSdkLog => "aliyun-python-sdk-core debug log",
        }
    }
}

/// Why a capture could not be read: where, what, and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {what}\n  = help: {help}")]
pub struct CaptureError {
    /// 1-based line of the capture.
    pub line: usize,
    /// What is wrong.
    pub what: String,
    /// What to do.
    pub help: String,
}

fn err(line: usize, what: impl Into<String>, help: impl Into<String>) -> CaptureError {
    CaptureError {
        line,
        what: what.into(),
        help: help.into(),
    }
}

/// What kind of capture `text` looks like.
pub fn detect(text: &str) -> Option<Kind> {
    let t = text.trim_start();
    let first = t.lines().next().unwrap_or("");
    if t.starts_with('{') {
        return Some(Kind::Har);
    }
    if text.contains("SendRequest: Host: ") {
        return Some(Kind::TencentSdkLog);
    }
    if text.contains("Request received. Product:") && text.contains(" Params: {") {
        return Some(Kind::AlibabaSdkLog);
    }
    let cmd = first.trim_start_matches("$ ").trim_start();
    if cmd.starts_with("curl ") || cmd == "curl" {
        return Some(Kind::Curl);
    }
    let mut words = first.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some(m), Some(_), Some(v))
            if v.starts_with("HTTP/") && m.chars().all(|c| c.is_ascii_uppercase()) =>
        {
            Some(Kind::Http)
        }
        _ => None,
    }
}

/// Reads every request of a capture of `kind` (`None`: detected).
pub fn parse(text: &str, kind: Option<Kind>) -> Result<(Kind, Vec<Captured>), CaptureError> {
    let kind = match kind.or_else(|| detect(text)) {
        Some(k) => k,
        None => {
            return Err(err(
                1,
                "not a capture apiconform reads",
                "pass a curl command line, a raw HTTP request (`POST / HTTP/1.1`, headers, a blank line, the body), a HAR file, or the debug log of tencentcloud-sdk-python or aliyun-python-sdk-core; or describe the call with --api NAME --param K=V",
            ))
        }
    };
    let requests = match kind {
        Kind::Curl => vec![Captured {
            at: "line 1".into(),
            request: curl(text)?,
        }],
        Kind::Http => vec![Captured {
            at: "line 1".into(),
            request: http(text)?,
        }],
        Kind::Har => har(text)?,
        Kind::TencentSdkLog => tencent_sdk_log(text)?,
        Kind::AlibabaSdkLog => alibaba_sdk_log(text)?,
    };
    Ok((kind, requests))
}

/// Splits a URL into its authority and its path and query (`/` when it has none).
fn split_url(url: &str, line: usize) -> Result<(String, String), CaptureError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            err(
                line,
                format!("`{}` is not an http(s) URL", shorten(url)),
                "the request's URL must start with http:// or https://",
            )
        })?;
    let cut = rest.find(['/', '?']).unwrap_or(rest.len());
    let (host, target) = rest.split_at(cut);
    let target = match target {
        "" => "/".to_string(),
        t if t.starts_with('?') => format!("/{t}"),
        t => t.to_string(),
    };
    Ok((host.to_string(), target))
}

fn shorten(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// A shell command line as words: single quotes, double quotes (with `\` escapes), `$'…'`,
/// backslash escapes and `\`-newline continuations. Returns each word with its line.
fn shell_words(text: &str) -> Result<Vec<(String, usize)>, CaptureError> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    let (mut line, mut word, mut in_word, mut start) = (1, String::new(), false, 1);
    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                line += 1;
                if in_word {
                    words.push((std::mem::take(&mut word), start));
                    in_word = false;
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push((std::mem::take(&mut word), start));
                    in_word = false;
                }
            }
            '\\' => match chars.next() {
                Some('\n') => line += 1,
                Some(n) => {
                    if !in_word {
                        (in_word, start) = (true, line);
                    }
                    word.push(n);
                }
                None => {}
            },
            '\'' | '"' => {
                if !in_word {
                    (in_word, start) = (true, line);
                }
                let close = c;
                loop {
                    match chars.next() {
                        None => {
                            return Err(err(
                                start,
                                format!("a {close} quote is never closed"),
                                "paste the whole command line, as the shell would run it",
                            ))
                        }
                        Some(q) if q == close => break,
                        Some('\\') if close == '"' => match chars.next() {
                            Some(n @ ('"' | '\\' | '$' | '`')) => word.push(n),
                            Some('\n') => line += 1,
                            Some(n) => {
                                word.push('\\');
                                word.push(n);
                            }
                            None => {}
                        },
                        Some(q) => {
                            if q == '\n' {
                                line += 1;
                            }
                            word.push(q);
                        }
                    }
                }
            }
            '$' if chars.peek() == Some(&'\'') => {
                chars.next();
                if !in_word {
                    (in_word, start) = (true, line);
                }
                loop {
                    match chars.next() {
                        None => {
                            return Err(err(
                                start,
                                "a $' quote is never closed",
                                "paste the whole command line, as the shell would run it",
                            ))
                        }
                        Some('\'') => break,
                        Some('\\') => match chars.next() {
                            Some('n') => word.push('\n'),
                            Some('r') => word.push('\r'),
                            Some('t') => word.push('\t'),
                            Some(n) => word.push(n),
                            None => {}
                        },
                        Some(q) => word.push(q),
                    }
                }
            }
            c => {
                if !in_word {
                    (in_word, start) = (true, line);
                }
                word.push(c);
            }
        }
    }
    if in_word {
        words.push((word, start));
    }
    Ok(words)
}

/// Options of curl that take a value and do not change the request apiconform sends.
const CURL_IGNORED_WITH_VALUE: &[&str] = &[
    "-o",
    "--output",
    "-m",
    "--max-time",
    "--connect-timeout",
    "-w",
    "--write-out",
    "--cacert",
    "--resolve",
    "-u",
    "--user",
    "-x",
    "--proxy",
    "--retry",
];

/// A curl command line as the request it sends.
pub fn curl(text: &str) -> Result<HttpRequest, CaptureError> {
    let text = text.trim_start().trim_start_matches("$ ");
    let words = shell_words(text)?;
    let mut it = words.into_iter();
    match it.next() {
        Some((w, _)) if w == "curl" => {}
        _ => {
            return Err(err(
                1,
                "the command is not curl",
                "paste a command line that starts with `curl`",
            ))
        }
    }
    let (mut method, mut url, mut headers, mut data) = (None, None, Vec::new(), Vec::new());
    let mut get = false;
    while let Some((w, line)) = it.next() {
        let mut value = |name: &str| {
            it.next().map(|(v, _)| v).ok_or_else(|| {
                err(
                    line,
                    format!("{name} has no value"),
                    "paste the whole command line",
                )
            })
        };
        // `-XPOST`, `-HName: v`, `--data=...`: the value joined to the option.
        let (opt, joined) = match w.as_str() {
            o if o.starts_with("--") => match o.split_once('=') {
                Some((o, v)) => (o.to_string(), Some(v.to_string())),
                None => (o.to_string(), None),
            },
            // Byte 1 is ASCII here, so 2 is a character boundary.
            o if o.len() > 2
                && o.starts_with('-')
                && matches!(o.as_bytes()[1], b'X' | b'H' | b'd' | b'A') =>
            {
                (o[..2].to_string(), Some(o[2..].to_string()))
            }
            o => (o.to_string(), None),
        };
        let mut take = |name: &str| match joined.clone() {
            Some(v) => Ok(v),
            None => value(name),
        };
        match opt.as_str() {
            "-X" | "--request" => method = Some(take(&opt)?),
            "-H" | "--header" => {
                let h = take(&opt)?;
                let (k, v) = h.split_once(':').ok_or_else(|| {
                    err(
                        line,
                        format!("header `{}` has no `:`", shorten(&h)),
                        "write headers as -H 'Name: value'",
                    )
                })?;
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
            "-A" | "--user-agent" => headers.push(("User-Agent".into(), take(&opt)?)),
            "-d" | "--data" | "--data-raw" | "--data-binary" | "--data-ascii"
            | "--data-urlencode" | "--json" => {
                let d = take(&opt)?;
                if d.starts_with('@') && opt != "--data-raw" {
                    return Err(err(
                        line,
                        format!("{opt} {} reads the body from a file", shorten(&d)),
                        "paste the body itself into the command line (--data-raw '...'), or import the raw HTTP request",
                    ));
                }
                if opt == "--json" {
                    headers.push(("Content-Type".into(), "application/json".into()));
                }
                data.push(d);
            }
            "-G" | "--get" => get = true,
            "--url" => url = Some(take(&opt)?),
            o if CURL_IGNORED_WITH_VALUE.contains(&o) => {
                take(o)?;
            }
            o if o.starts_with('-') => {}
            _ => {
                if url.is_none() {
                    url = Some(w);
                }
            }
        }
    }
    let Some(url) = url else {
        return Err(err(
            1,
            "the command names no URL",
            "paste the whole command line, URL included",
        ));
    };
    let (host, mut target) = split_url(&url, 1)?;
    let mut body = data.join("&");
    if get && !body.is_empty() {
        target.push(if target.contains('?') { '&' } else { '?' });
        target.push_str(&body);
        body.clear();
    }
    let method = method.unwrap_or_else(|| match body.is_empty() {
        true => "GET".into(),
        false => "POST".into(),
    });
    if !body.is_empty()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        // What curl sends with -d.
        headers.push((
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
    }
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        headers.insert(0, ("Host".into(), host));
    }
    Ok(HttpRequest {
        method: method.to_ascii_uppercase(),
        target,
        headers,
        body: body.into_bytes(),
    })
}

/// A raw HTTP/1.1 request: request line, headers, a blank line, the body (cut at
/// `Content-Length` when it says less).
pub fn http(text: &str) -> Result<HttpRequest, CaptureError> {
    let text = text.trim_start_matches(['\r', '\n']);
    let (head, body) = match (text.find("\r\n\r\n"), text.find("\n\n")) {
        (Some(a), Some(b)) if b < a => (&text[..b], &text[b + 2..]),
        (Some(a), _) => (&text[..a], &text[a + 4..]),
        (None, Some(b)) => (&text[..b], &text[b + 2..]),
        (None, None) => (text, ""),
    };
    let mut lines = head.lines();
    let first = lines.next().unwrap_or("");
    let mut parts = first.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(err(
            1,
            format!("`{}` is not a request line", shorten(first)),
            "a raw request starts with `METHOD TARGET HTTP/1.1`",
        ));
    };
    if !version.starts_with("HTTP/") {
        return Err(err(
            1,
            format!("`{}` is not a request line", shorten(first)),
            "a raw request starts with `METHOD TARGET HTTP/1.1`",
        ));
    }
    let mut headers = Vec::new();
    for (i, l) in lines.enumerate() {
        let (k, v) = l.split_once(':').ok_or_else(|| {
            err(
                i + 2,
                format!("header line `{}` has no `:`", shorten(l)),
                "each header line is `Name: value`; end the headers with a blank line",
            )
        })?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let target = match target
        .strip_prefix("http://")
        .or(target.strip_prefix("https://"))
    {
        // An absolute target (as sent to a proxy).
        Some(_) => split_url(target, 1)?.1,
        None => target.to_string(),
    };
    let mut body = body.as_bytes().to_vec();
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok());
    if let Some(n) = length {
        body.truncate(n);
    }
    Ok(HttpRequest {
        method: method.to_string(),
        target,
        headers,
        body,
    })
}

/// Every request of a HAR file (`log.entries[].request`).
pub fn har(text: &str) -> Result<Vec<Captured>, CaptureError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        err(
            e.line(),
            format!("not JSON: {e}"),
            "export the HAR file again from the browser's network panel (Save all as HAR)",
        )
    })?;
    let Some(entries) = value["log"]["entries"].as_array() else {
        return Err(err(
            1,
            "a HAR file holds `log.entries`, and this one does not",
            "export the HAR file again from the browser's network panel (Save all as HAR)",
        ));
    };
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let at = format!("entry {}", i + 1);
        let r = &e["request"];
        let (Some(method), Some(url)) = (r["method"].as_str(), r["url"].as_str()) else {
            return Err(err(
                1,
                format!("{at}: `request.method` or `request.url` is missing"),
                "each entry's request needs a method and a url",
            ));
        };
        let (host, target) = split_url(url, 1).map_err(|e| CaptureError {
            what: format!("{at}: {}", e.what),
            ..e
        })?;
        let mut headers: Vec<(String, String)> = r["headers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| Some((h["name"].as_str()?, h["value"].as_str()?)))
            // HTTP/2 pseudo-headers (`:authority`) are not headers of the request.
            .filter(|(k, _)| !k.starts_with(':'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            headers.insert(0, ("Host".into(), host));
        }
        let body = r["postData"]["text"].as_str().unwrap_or("");
        if let Some(mime) = r["postData"]["mimeType"].as_str() {
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                headers.push(("Content-Type".into(), mime.to_string()));
            }
        }
        out.push(Captured {
            at,
            request: HttpRequest {
                method: method.to_string(),
                target,
                headers,
                body: body.as_bytes().to_vec(),
            },
        });
    }
    if out.is_empty() {
        return Err(err(
            1,
            "the HAR file holds no entries",
            "record the calls first, then export",
        ));
    }
    Ok(out)
}

/// Every `SendRequest:` block of tencentcloud-sdk-python's debug log:
///
/// ```text
/// 2026-12-08 01:37:23,141 1066 request.py L100 DEBUG SendRequest: Host: cvm.tencentcloudapi.com
/// Method: POST
/// Uri: /
/// Header: X-TC-TraceId: …
/// Content-Type: application/json
/// …
/// Data: {"InstanceIds": ["ins-1e4r6y8i"]}
/// ```
///
/// A GET carries its parameters in `Data`; they go into the query.
pub fn tencent_sdk_log(text: &str) -> Result<Vec<Captured>, CaptureError> {
    const START: &str = "SendRequest: Host: ";
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(at) = lines[i].find(START) else {
            i += 1;
            continue;
        };
        let first = i + 1;
        let host = lines[i][at + START.len()..].trim().to_string();
        let (mut method, mut uri, mut headers, mut data) = (None, None, Vec::new(), None);
        let mut in_headers = false;
        i += 1;
        while i < lines.len() {
            let l = lines[i];
            if let Some(v) = l.strip_prefix("Method: ") {
                method = Some(v.trim().to_string());
            } else if let Some(v) = l.strip_prefix("Uri: ") {
                uri = Some(v.trim().to_string());
            } else if let Some(v) = l.strip_prefix("Header: ") {
                in_headers = true;
                if let Some((k, v)) = v.split_once(':') {
                    headers.push((k.trim().to_string(), v.trim().to_string()));
                }
            } else if let Some(v) = l.strip_prefix("Data: ") {
                data = Some(v.to_string());
                i += 1;
                break;
            } else if in_headers {
                if let Some((k, v)) = l.split_once(':') {
                    headers.push((k.trim().to_string(), v.trim().to_string()));
                }
            }
            i += 1;
        }
        let (Some(method), Some(uri), Some(data)) = (method, uri, data) else {
            return Err(err(
                first,
                "a SendRequest block without its Method, Uri or Data line",
                "paste the whole block the SDK logged, from `SendRequest:` to its `Data:` line",
            ));
        };
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            headers.insert(0, ("Host".into(), host));
        }
        let (target, body) = match method.eq_ignore_ascii_case("GET") && !data.is_empty() {
            true => (format!("{uri}?{data}"), Vec::new()),
            false => (uri, data.into_bytes()),
        };
        out.push(Captured {
            at: format!("line {first}"),
            request: HttpRequest {
                method,
                target,
                headers,
                body,
            },
        });
    }
    if out.is_empty() {
        return Err(err(
            1,
            "no `SendRequest:` block",
            "turn the SDK's debug log on (client.set_stream_logger(level=logging.DEBUG)) and paste what it printed",
        ));
    }
    Ok(out)
}

/// Every `Request received.` line of aliyun-python-sdk-core's debug log:
///
/// ```text
/// … aliyunsdkcore.client DEBUG Request received. Product:Ecs Endpoint:ecs.cn-hangzhou.aliyuncs.com Params: {'KeyPairName': 'kp-1', 'Action': 'DetachKeyPair', …}
/// ```
///
/// The log shows the parameters, not the signed request: they go into an RPC query with the
/// signature's parameters as placeholders (the request is signed afresh anyway).
pub fn alibaba_sdk_log(text: &str) -> Result<Vec<Captured>, CaptureError> {
    let mut out = Vec::new();
    for (n, l) in text.lines().enumerate() {
        let Some(at) = l.find("Request received. Product:") else {
            continue;
        };
        let rest = &l[at..];
        let endpoint = rest
            .split_once("Endpoint:")
            .map(|(_, e)| e.split_whitespace().next().unwrap_or("").to_string())
            .unwrap_or_default();
        let Some((_, dict)) = rest.split_once(" Params: ") else {
            continue;
        };
        let pairs = python_dict(dict).ok_or_else(|| {
            err(
                n + 1,
                "the Params dictionary cannot be read",
                "paste the line as the SDK logged it, up to its closing `}`",
            )
        })?;
        let mut pairs: Vec<(String, String)> = pairs;
        for (k, v) in [
            ("Timestamp", "1970-01-01T00:00:00Z"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", "0"),
            ("AccessKeyId", "placeholder"),
            ("Signature", "placeholder"),
        ] {
            if !pairs.iter().any(|(p, _)| p == k) {
                pairs.push((k.into(), v.into()));
            }
        }
        out.push(Captured {
            at: format!("line {}", n + 1),
            request: HttpRequest {
                method: "GET".into(),
                target: format!("/?{}", super::encoding::form_encode(&pairs)),
                headers: vec![("Host".into(), endpoint)],
                body: Vec::new(),
            },
        });
    }
    if out.is_empty() {
        return Err(err(
            1,
            "no `Request received.` line",
            "turn the SDK's debug log on (client.set_stream_logger(log_level=logging.DEBUG)) and paste what it printed",
        ));
    }
    Ok(out)
}

/// A Python `dict` of strings as `repr` prints it (`{'K': 'V', "K2": 'it\'s'}`); numbers,
/// `True`, `False` and `None` become their text.
fn python_dict(text: &str) -> Option<Vec<(String, String)>> {
    let mut chars = text.trim().chars().peekable();
    if chars.next()? != '{' {
        return None;
    }
    let mut items = Vec::new();
    let read = |chars: &mut std::iter::Peekable<std::str::Chars>| -> Option<String> {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match *chars.peek()? {
            q @ ('\'' | '"') => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next()? {
                        '\\' => match chars.next()? {
                            'n' => s.push('\n'),
                            't' => s.push('\t'),
                            c => s.push(c),
                        },
                        c if c == q => return Some(s),
                        c => s.push(c),
                    }
                }
            }
            _ => {
                let mut s = String::new();
                while let Some(&c) = chars.peek() {
                    if c == ',' || c == '}' || c == ':' {
                        break;
                    }
                    s.push(c);
                    chars.next();
                }
                Some(s.trim().to_string())
            }
        }
    };
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek() == Some(&'}') {
            return Some(items);
        }
        let k = read(&mut chars)?;
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next()? != ':' {
            return None;
        }
        let v = read(&mut chars)?;
        items.push((k, v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_curl_line_with_continuations_and_quotes_is_the_request_it_sends() {
        let text = "curl -sS -X POST 'https://cvm.tencentcloudapi.com/' \\\n  -H 'Content-Type: application/json' \\\n  -H \"X-TC-Action: AssociateInstancesKeyPairs\" \\\n  -H 'Authorization: TC3-HMAC-SHA256 Credential=AKIDx/2026-01-01/cvm/tc3_request, SignedHeaders=content-type;host, Signature=abc' \\\n  --data-raw '{\"InstanceIds\": [\"ins-1\"]}'";
        assert_eq!(detect(text), Some(Kind::Curl));
        let r = curl(text).unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.target, "/");
        assert_eq!(r.header("host"), Some("cvm.tencentcloudapi.com"));
        assert_eq!(r.header("x-tc-action"), Some("AssociateInstancesKeyPairs"));
        assert!(r
            .header("authorization")
            .unwrap()
            .contains(", SignedHeaders"));
        assert_eq!(r.body, br#"{"InstanceIds": ["ins-1"]}"#);
        let get = curl("curl 'http://127.0.0.1:9/?Action=X&A=1'").unwrap();
        assert_eq!(
            (get.method.as_str(), get.target.as_str()),
            ("GET", "/?Action=X&A=1")
        );
        assert!(curl("curl -H 'X: y")
            .unwrap_err()
            .what
            .contains("never closed"));
        assert!(curl("curl -sS").unwrap_err().what.contains("no URL"));
        // Options that are not ASCII are nothing curl knows, and never a panic.
        assert!(curl("curl -é -Ü€ http://h/").is_ok());
        assert_eq!(curl("curl -XPUT -HA:b http://h/").unwrap().method, "PUT");
        assert!(curl("curl -d @body.json http://h/")
            .unwrap_err()
            .what
            .contains("file"));
    }

    #[test]
    fn a_raw_request_keeps_its_bytes_and_a_bad_header_line_is_named() {
        let text = "POST / HTTP/1.1\r\nHost: h:1\r\nContent-Length: 2\r\n\r\n{}trailing";
        let r = http(text).unwrap();
        assert_eq!((r.method.as_str(), r.body.as_slice()), ("POST", &b"{}"[..]));
        let e = http("GET / HTTP/1.1\nHost h\n\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(parse("hello", None).unwrap_err().help.contains("--api"));
    }

    #[test]
    fn a_har_file_gives_every_entry_without_pseudo_headers() {
        let text = r#"{"log": {"entries": [
            {"request": {"method": "POST", "url": "https://ecs.aliyuncs.com/?Action=DetachKeyPair",
              "headers": [{"name": ":authority", "value": "ecs.aliyuncs.com"}, {"name": "x-acs-action", "value": "DetachKeyPair"}],
              "postData": {"mimeType": "application/x-www-form-urlencoded", "text": "A=1"}}},
            {"request": {"method": "GET", "url": "http://h/", "headers": []}}]}}"#;
        let (kind, all) = parse(text, None).unwrap();
        assert_eq!((kind, all.len()), (Kind::Har, 2));
        let r = &all[0].request;
        assert_eq!(r.header("host"), Some("ecs.aliyuncs.com"));
        assert!(r.headers.iter().all(|(k, _)| !k.starts_with(':')));
        assert_eq!(r.body, b"A=1");
        assert_eq!(all[1].at, "entry 2");
        assert!(har(r#"{"log": {}}"#)
            .unwrap_err()
            .what
            .contains("log.entries"));
    }

    #[test]
    fn sdk_logs_are_read_and_a_truncated_one_is_named() {
        let tencent = "x DEBUG SendRequest: Host: cvm.tencentcloudapi.com\nMethod: GET\nUri: /\nHeader: Content-Type: application/x-www-form-urlencoded\nData: Action=A&InstanceIds.0=ins-1\n\nx DEBUG GetResponse: HTTP/1.1 200 OK\n";
        assert_eq!(detect(tencent), Some(Kind::TencentSdkLog));
        let r = &tencent_sdk_log(tencent).unwrap()[0].request;
        assert_eq!(r.target, "/?Action=A&InstanceIds.0=ins-1");
        assert_eq!(r.header("host"), Some("cvm.tencentcloudapi.com"));
        let cut = "x DEBUG SendRequest: Host: h\nMethod: POST\n";
        assert!(tencent_sdk_log(cut).unwrap_err().what.contains("Data"));
        let ali = "1 x aliyunsdkcore.client DEBUG Request received. Product:Ecs Endpoint:ecs.cn-hangzhou.aliyuncs.com Params: {'KeyPairName': 'kp-1', \"InstanceIds\": '[\"i-1\", \"i-2\"]', 'Action': 'DetachKeyPair', 'Page': 2}";
        assert_eq!(detect(ali), Some(Kind::AlibabaSdkLog));
        let r = &alibaba_sdk_log(ali).unwrap()[0].request;
        assert!(
            r.target
                .contains("InstanceIds=%5B%22i-1%22%2C+%22i-2%22%5D"),
            "{}",
            r.target
        );
        assert!(r.target.contains("Page=2") && r.target.contains("Action=DetachKeyPair"));
        assert_eq!(
            python_dict("{'a': 'it\\'s', 'b': True}").unwrap()[0].1,
            "it's"
        );
        assert!(python_dict("{'a' 'b'}").is_none());
    }

    proptest::proptest! {
        /// Whatever a person pastes, reading it never panics.
        #[test]
        fn no_capture_panics(
            text in "(curl |POST / HTTP/1.1\n|x SendRequest: Host: |Request received. Product:E Endpoint:h Params: \\{)?(.|\n){0,200}"
        ) {
            let _ = parse(&text, None);
            for kind in [Kind::Curl, Kind::Http, Kind::Har, Kind::TencentSdkLog, Kind::AlibabaSdkLog] {
                let _ = parse(&text, Some(kind));
            }
        }
    }
}
