"""Remote rasters: any path GDAL opens over the network (``https://``, ``s3://``, ``gs://``,
``/vsicurl/...``, ``/vsis3/...``), read block by block through GDAL's range requests, and
lists of them (``@list.txt``). Credentials and retries come from GDAL's own environment
variables (``AWS_ACCESS_KEY_ID``, ``AWS_NO_SIGN_REQUEST``, ``GDAL_HTTP_MAX_RETRY``, ...);
messages name a URL without its user, password or query string.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import rasterio

from fatsr.errors import FatsrError

REMOTE_SCHEMES = ("http://", "https://", "s3://", "gs://", "az://", "/vsicurl/", "/vsis3/", "/vsigs/", "/vsiaz/")


def remote_env() -> rasterio.Env:
    """GDAL settings for remote reads: no listing of the remote folder to look for sidecar files
    (a COG has none; each listing or probe is a request), unless the environment says otherwise."""
    return rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN=os.environ.get("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR"))


def is_remote(spec: str | os.PathLike) -> bool:
    """Whether ``spec`` names a raster GDAL reads over the network."""
    return isinstance(spec, str) and spec.lower().startswith(REMOTE_SCHEMES)


def source_and_name(spec: str | os.PathLike) -> tuple[Path | str, str]:
    """A raster as it is opened (a Path, or a remote path or URL as given) and its name for
    messages (a URL without credentials)."""
    if is_remote(spec):
        return str(spec), public(str(spec))
    return Path(spec), str(Path(spec))


def gdal_path(spec: str) -> str:
    """The path GDAL itself opens for a URL (as in a VRT): ``/vsicurl/https://...``,
    ``/vsis3/bucket/key``, ``/vsigs/...``, ``/vsiaz/...``; other paths as they are."""
    lower = spec.lower()
    if lower.startswith(("http://", "https://")):
        return "/vsicurl/" + spec
    for scheme, prefix in (("s3://", "/vsis3/"), ("gs://", "/vsigs/"), ("az://", "/vsiaz/")):
        if lower.startswith(scheme):
            return prefix + spec[len(scheme) :]
    return spec


def public(spec: str) -> str:
    """``spec`` without credentials: no user:password@, no query string (signed URLs carry keys there)."""
    prefix = ""
    match = re.match(r"(/vsi[a-z0-9_]+/)(.*)", spec)
    if match:
        prefix, spec = match.groups()
    parts = urlsplit(spec)
    if not parts.scheme:
        return prefix + spec
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return prefix + urlunsplit((parts.scheme, netloc, parts.path, "..." if parts.query else "", ""))


def stem(spec: str) -> str:
    """The file name of a remote path without its suffix (the default output name)."""
    name = urlsplit(re.sub(r"^/vsi[a-z0-9_]+/", "", spec)).path.rstrip("/").rsplit("/", 1)[-1]
    return Path(name).stem or "remote"


def failure(spec: str, reason: str) -> FatsrError:
    """A one-line error for a remote raster that cannot be opened or read, saying what to check."""
    where = public(spec)
    reason = re.sub(r"(\w+://)[^/\s@]*@", r"\1", reason)  # no user:password@ of any URL in GDAL's words
    reason = re.sub(r"\?\S*", "?...", reason)  # nor query strings
    text = reason.lower()
    code = re.search(r"\b(40[0-9]|41[0-9]|5[0-9][0-9])\b", reason)
    if "credentials" in text or "aws_secret_access_key" in text:
        why = "no credentials; set those GDAL reads (e.g. AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), or AWS_NO_SIGN_REQUEST=YES for a public bucket"
    elif code and code.group(1) in ("401", "403"):
        why = f"access denied (HTTP {code.group(1)}); set the credentials GDAL reads (e.g. AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or AWS_NO_SIGN_REQUEST=YES for a public bucket)"
    elif (code and code.group(1) == "404") or "does not exist" in text or "no such file" in text:
        why = "not found (HTTP 404); check the URL"
    elif code:
        why = f"the server answered HTTP {code.group(1)}; try again later"
    else:
        why = f"{reason.splitlines()[0][:160] if reason else 'no answer'}; check the URL and the network (GDAL_HTTP_TIMEOUT, GDAL_HTTP_MAX_RETRY tune timeouts and retries)"
    return FatsrError(f"{where}: cannot read the remote raster: {why}")


def expand_lists(specs: list[str]) -> list[str]:
    """``@FILE`` items replaced by the paths or URLs listed in FILE (one a line; blank lines and
    lines starting with # skipped)."""
    out: list[str] = []
    for spec in specs:
        if not spec.startswith("@"):
            out.append(spec)
            continue
        try:
            lines = Path(spec[1:]).read_text().splitlines()
        except OSError as exc:
            raise FatsrError(f"{spec[1:]}: cannot read this list of inputs ({exc.strerror or exc})") from None
        listed = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
        if not listed:
            raise FatsrError(f"{spec[1:]}: the list of inputs is empty; give one path or URL a line")
        out.extend(listed)
    return out
