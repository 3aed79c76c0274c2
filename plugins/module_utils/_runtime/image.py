# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OCI image layouts (``skopeo copy ... oci:DIR:TAG``, umoci, ``docker save`` 25+): resolve a tag,
verify every blob, apply the layers.

A layout is ``oci-layout``, ``index.json`` and ``blobs/<algorithm>/<hex>``. A tag is the annotation
``org.opencontainers.image.ref.name`` of a descriptor in ``index.json`` (or, failing that, in an index
nested in it). A descriptor that points to an index (a multi-platform image) is narrowed to the
manifest for this host's platform. Every blob is checked against its descriptor (size, then
sha256/sha512 digest) before it is used: the manifests and the config as they are read, each layer
before any layer is applied and again while it is applied; a layer's uncompressed digest is checked
against the config's ``rootfs.diff_ids``. Layers may be uncompressed or gzip (zstd only on Python
3.14+); they are applied in order with OCI whiteouts.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import stat
from typing import TYPE_CHECKING

from .archive import HashingReader, decompressed, extract_layer, scan_tar, sniff_compression
from .errors import BundleError

if TYPE_CHECKING:
    from collections.abc import Collection
    from typing import IO, Any, Literal, Optional, Tuple

    from .archive import RootfsWriter, Stream

    # (os, architecture, variant) in OCI terms
    Platform = Tuple[str, str, Optional[str]]

REF_ANNOTATION = "org.opencontainers.image.ref.name"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
CONFIG_TYPES = (OCI_CONFIG, DOCKER_CONFIG)
LAYER_TYPES = (
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
)
MAX_JSON_BLOB = 8 << 20
MAX_INDEX_DEPTH = 8
_DIGEST_RE = re.compile(r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")
_ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
                  "armv7l": "arm", "armv6l": "arm", "i386": "386", "i686": "386",
                  "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
                  "mips64": "mips64", "mips64el": "mips64le", "loongarch64": "loong64"}
_VARIANTS = {"armv7l": "v7", "armv6l": "v6", "aarch64": "v8", "arm64": "v8"}


class ImageError(BundleError):
    """An image layout that is missing, malformed, or whose blobs do not match their digests."""


def host_platform() -> Platform:
    """(os, architecture, variant) of this host in OCI terms."""
    machine = platform.machine().lower()
    return "linux", _ARCHITECTURES.get(machine, machine), _VARIANTS.get(machine)


def _short(digest: str) -> str:
    return digest[:19] + "..." if len(digest) > 22 else digest


class Image(object):
    """A resolved image: the manifest for this host, its config and its layer descriptors."""

    def __init__(self, layout: ImageLayout, ref: str | None, digest: str, manifest_digest: str,
                 manifest: dict[str, Any], config_digest: str, config: dict[str, Any]) -> None:
        self.layout = layout
        self.ref = ref
        self.digest = digest                    # what the tag points to (manifest or index)
        self.manifest_digest = manifest_digest  # the manifest for this platform
        self.manifest = manifest
        self.config_digest = config_digest
        self.config = config
        self.layers: list[dict[str, Any]] = manifest["layers"]
        self.warnings: list[str] = []

    @property
    def diff_ids(self) -> list[str] | None:
        ids = (self.config.get("rootfs") or {}).get("diff_ids") or []
        return ids if len(ids) == len(self.layers) else None

    def _layer_what(self, index: int) -> str:
        digest = _short(self.layers[index]["digest"])
        return "layer %d of %d (%s) of image %s" % (index + 1, len(self.layers), digest,
                                                    self.layout.path)

    def verify_layers(self) -> None:
        """Check every layer blob against its descriptor before any of them is used."""
        for index, layer in enumerate(self.layers):
            self.layout.verify(layer, self._layer_what(index))

    def apply(self, writer: RootfsWriter) -> None:
        """Verify all layers, then apply them in order (with whiteouts) through ``writer``."""
        self.verify_layers()
        diff_ids = self.diff_ids
        for index, layer in enumerate(self.layers):
            what = self._layer_what(index)
            with self._open_layer(layer, what) as (hashed, stream):
                uncompressed = extract_layer(hashed, stream, writer, what,
                                             diff_ids[index] if diff_ids is not None else None,
                                             error=ImageError)
            if hashed.digest != layer["digest"]:
                raise ImageError("%s changed while it was applied (now %s): refusing it"
                                 % (what, _short(hashed.digest)))
            if diff_ids is not None and uncompressed.digest != diff_ids[index]:
                raise ImageError("%s uncompresses to %s, but the image config's rootfs.diff_ids "
                                 "says %s: the image is corrupt"
                                 % (what, _short(uncompressed.digest), _short(str(diff_ids[index]))))

    def read_files(self, names: Collection[str]) -> dict[str, bytes | None]:
        """{relpath: bytes or None} of ``names`` as the layers leave them, without writing."""
        self.verify_layers()
        found: dict[str, bytes | None] = dict.fromkeys(names)
        for index, layer in enumerate(self.layers):
            what = self._layer_what(index)
            with self._open_layer(layer, what) as (dummy, stream):
                scan_tar(stream, names, found, what, whiteouts=True)
        return found

    def _open_layer(self, layer: dict[str, Any], what: str) -> _LayerStream:
        return _LayerStream(self.layout.blob_path(layer, what), layer, what)


class _LayerStream(object):
    def __init__(self, path: str, layer: dict[str, Any], what: str) -> None:
        self.path, self.layer, self.what = path, layer, what
        self.raw: IO[bytes] | None = None

    def __enter__(self) -> tuple[HashingReader, Stream]:
        try:
            self.raw = open(self.path, "rb")
        except (IOError, OSError) as exc:
            raise ImageError("cannot read %s: %s" % (self.what, exc.strerror))
        compression = sniff_compression(self.raw.read(6))
        self.raw.seek(0)
        hashed = HashingReader(self.raw, self.layer["digest"].split(":", 1)[0])
        return hashed, decompressed(hashed, compression, self.what)

    def __exit__(self, *exc_info: object) -> Literal[False]:
        if self.raw is not None:
            self.raw.close()
        return False


class ImageLayout(object):
    """An OCI image layout directory."""

    def __init__(self, path: str) -> None:
        if not path or not os.path.isabs(path):
            raise ImageError("image must be an absolute path, got %r" % (path,), field="image")
        self.path = os.path.normpath(path)
        if not os.path.isdir(self.path):
            raise ImageError("image layout %s does not exist or is not a directory" % self.path,
                             path=self.path)
        layout = self._read_json_file("oci-layout")
        if not isinstance(layout, dict) or "imageLayoutVersion" not in layout:
            raise ImageError("%s/oci-layout has no imageLayoutVersion: not an OCI image layout"
                             % self.path)
        if not str(layout["imageLayoutVersion"]).startswith("1."):
            raise ImageError("%s: image layout version %s is not supported (1.x is)"
                             % (self.path, layout["imageLayoutVersion"]))
        self.index: dict[str, Any] = self._read_json_file("index.json")
        self._check_index(self.index, "%s/index.json" % self.path)

    # --- files and blobs ----------------------------------------------------------------------

    def _read_json_file(self, name: str) -> Any:
        path = os.path.join(self.path, name)
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_JSON_BLOB + 1)
        except (IOError, OSError) as exc:
            raise ImageError("%s is not an OCI image layout: cannot read %s: %s"
                             % (self.path, name, exc.strerror), path=path)
        return _parse_json(data, path)

    def blob_path(self, descriptor: dict[str, Any], what: str) -> str:
        """Path of a descriptor's blob, after checking the descriptor's form."""
        if not isinstance(descriptor, dict):
            raise ImageError("%s: the descriptor is not a JSON object" % what)
        digest = descriptor.get("digest")
        if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
            raise ImageError("%s: %r is not a digest this module can verify (sha256:<64 hex> or "
                             "sha512:<128 hex>)" % (what, digest))
        size = descriptor.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ImageError("%s: descriptor size %r is not a byte count" % (what, size))
        algorithm, encoded = digest.split(":", 1)
        path = os.path.join(self.path, "blobs", algorithm, encoded)
        try:
            st = os.stat(path)
        except OSError:
            raise ImageError("%s: blob %s is missing from %s/blobs" % (what, digest, self.path),
                             path=path)
        if not stat.S_ISREG(st.st_mode):
            raise ImageError("%s: blob %s is not a regular file" % (what, path), path=path)
        if st.st_size != size:
            raise ImageError("%s: blob %s is %d bytes, but its descriptor says %d: the layout is "
                             "corrupt or was tampered with" % (what, digest, st.st_size, size),
                             path=path)
        return path

    def verify(self, descriptor: dict[str, Any], what: str) -> str:
        """Check a blob's size and digest (streaming); returns its path."""
        path = self.blob_path(descriptor, what)
        algorithm = descriptor["digest"].split(":", 1)[0]
        digest = hashlib.new(algorithm)
        try:
            with open(path, "rb") as handle:
                while True:
                    chunk = handle.read(1 << 20)
                    if not chunk:
                        break
                    digest.update(chunk)
        except (IOError, OSError) as exc:
            raise ImageError("%s: cannot read %s: %s" % (what, path, exc.strerror), path=path)
        actual = "%s:%s" % (algorithm, digest.hexdigest())
        if actual != descriptor["digest"]:
            raise ImageError("%s: blob %s has digest %s: the layout is corrupt or was tampered "
                             "with" % (what, descriptor["digest"], actual), path=path)
        return path

    def read_json(self, descriptor: dict[str, Any], what: str) -> Any:
        """The verified, parsed JSON of a (small) blob."""
        path = self.blob_path(descriptor, what)
        if descriptor["size"] > MAX_JSON_BLOB:
            raise ImageError("%s: blob %s is %d bytes, too large for a manifest or config"
                             % (what, descriptor["digest"], descriptor["size"]))
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_JSON_BLOB + 1)
        except (IOError, OSError) as exc:
            raise ImageError("%s: cannot read %s: %s" % (what, path, exc.strerror), path=path)
        algorithm = descriptor["digest"].split(":", 1)[0]
        actual = "%s:%s" % (algorithm, hashlib.new(algorithm, data).hexdigest())
        if actual != descriptor["digest"]:
            raise ImageError("%s: blob %s has digest %s: the layout is corrupt or was tampered "
                             "with" % (what, descriptor["digest"], actual), path=path)
        return _parse_json(data, "%s (blob %s)" % (what, descriptor["digest"]))

    # --- resolving a tag ----------------------------------------------------------------------

    @staticmethod
    def _check_index(index: Any, what: str) -> None:
        if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
            raise ImageError("%s is not an image index: it has no manifests list" % what)
        for entry in index["manifests"]:
            if not isinstance(entry, dict):
                raise ImageError("%s: a manifests entry is not a JSON object" % what)

    def refs(self) -> list[str]:
        """The tags named in index.json."""
        names = [(m.get("annotations") or {}).get(REF_ANNOTATION) for m in self.index["manifests"]]
        return [str(name) for name in names if name]

    def _find_ref(self, index: dict[str, Any], ref: str, what: str,
                  depth: int) -> list[dict[str, Any]]:
        matches = [m for m in index["manifests"]
                   if (m.get("annotations") or {}).get(REF_ANNOTATION) == ref]
        if matches:
            return matches
        if depth >= MAX_INDEX_DEPTH:
            return []
        for entry in index["manifests"]:
            if entry.get("mediaType") in INDEX_TYPES:
                nested_what = "index %s in %s" % (_short(entry.get("digest", "?")), what)
                nested = self.read_json(entry, nested_what)
                self._check_index(nested, nested_what)
                found = self._find_ref(nested, ref, nested_what, depth + 1)
                if found:
                    return found
        return []

    def resolve(self, ref: str | None = None, host: Platform | None = None) -> Image:
        """The Image that ``ref`` names (default: the only manifest, or 'latest')."""
        what = "%s/index.json" % self.path
        entries = self.index["manifests"]
        if not entries:
            raise ImageError("%s lists no images" % what)
        if ref is None and len(entries) == 1:
            chosen = entries[0]
            ref = (chosen.get("annotations") or {}).get(REF_ANNOTATION)
        else:
            wanted = "latest" if ref is None else ref
            matches = self._find_ref(self.index, wanted, what, 0)
            if not matches:
                refs = self.refs()
                if ref is None:
                    raise ImageError("image %s holds %d images and none is tagged 'latest' "
                                     "(tags: %s); set image_ref" % (self.path, len(entries),
                                                                    ", ".join(refs) or "none"),
                                     field="image_ref")
                raise ImageError("image %s has no tag %r (tags: %s)"
                                 % (self.path, ref, ", ".join(refs) or "none"), field="image_ref")
            if len(set(m.get("digest") for m in matches)) > 1:
                raise ImageError("image %s: tag %r names %d different images"
                                 % (self.path, wanted, len(matches)), field="image_ref")
            chosen, ref = matches[0], wanted
        digest = chosen.get("digest")
        manifest_descriptor, manifest, warnings = self._to_manifest(chosen, what, host or host_platform(), 0)
        config_descriptor = manifest["config"]
        config_what = "config of image %s" % self.path
        if config_descriptor.get("mediaType") not in CONFIG_TYPES:
            raise ImageError("image %s (%s) is not a container image: its config has media type "
                             "%r" % (self.path, ref or _short(digest), config_descriptor.get("mediaType")))
        config = self.read_json(config_descriptor, config_what)
        if not isinstance(config, dict):
            raise ImageError("%s is not a JSON object" % config_what)
        image_os = config.get("os")
        if image_os and image_os != "linux":
            raise ImageError("image %s (%s) is for %s, not linux" % (self.path, ref or _short(digest), image_os))
        host_arch = (host or host_platform())[1]
        if config.get("architecture") and config["architecture"] != host_arch:
            warnings.append("image %s (%s) is built for %s, this host is %s"
                            % (self.path, ref or _short(digest), config["architecture"], host_arch))
        image = Image(self, ref, digest, manifest_descriptor["digest"], manifest,
                      config_descriptor["digest"], config)
        image.warnings = warnings
        return image

    def _to_manifest(self, descriptor: dict[str, Any], what: str, host: Platform,
                     depth: int) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
        """(descriptor, manifest, warnings) of the image manifest ``descriptor`` leads to."""
        media_type = descriptor.get("mediaType")
        document = self.read_json(descriptor, "%s %s in %s" % (
            "index" if media_type in INDEX_TYPES else "manifest",
            _short(str(descriptor.get("digest"))), what))
        if not isinstance(document, dict):
            raise ImageError("%s: %s is not a JSON object" % (what, descriptor.get("digest")))
        media_type = media_type or document.get("mediaType") or \
            (OCI_INDEX if "manifests" in document else OCI_MANIFEST)
        if media_type in INDEX_TYPES:
            if depth >= MAX_INDEX_DEPTH:
                raise ImageError("%s: indexes nested more than %d deep" % (what, MAX_INDEX_DEPTH))
            nested_what = "index %s" % _short(descriptor["digest"])
            self._check_index(document, nested_what)
            entry = self._choose_platform(document, nested_what, host)
            return self._to_manifest(entry, nested_what, host, depth + 1)
        if media_type not in MANIFEST_TYPES:
            raise ImageError("%s: %s has media type %r, not an image manifest or index"
                             % (what, descriptor.get("digest"), media_type))
        if document.get("schemaVersion") != 2:
            raise ImageError("%s: manifest %s has schemaVersion %r (2 is supported)"
                             % (what, descriptor["digest"], document.get("schemaVersion")))
        if not isinstance(document.get("config"), dict) or not isinstance(document.get("layers"), list):
            raise ImageError("%s: manifest %s has no config or no layers list"
                             % (what, descriptor["digest"]))
        for index, layer in enumerate(document["layers"]):
            if not isinstance(layer, dict) or layer.get("mediaType") not in LAYER_TYPES:
                raise ImageError("%s: layer %d of manifest %s has media type %r, not a file "
                                 "system layer" % (what, index + 1, _short(descriptor["digest"]),
                                                   layer.get("mediaType") if isinstance(layer, dict)
                                                   else None))
        return descriptor, document, []

    @staticmethod
    def _choose_platform(index: dict[str, Any], what: str, host: Platform) -> dict[str, Any]:
        host_os, host_arch, host_variant = host
        candidates = [m for m in index["manifests"]
                      if m.get("mediaType") in MANIFEST_TYPES + INDEX_TYPES or not m.get("mediaType")]
        # docker buildx attestations are manifests for the platform unknown/unknown
        candidates = [m for m in candidates
                      if (m.get("annotations") or {}).get("vnd.docker.reference.type")
                      != "attestation-manifest"]
        with_platform = [m for m in candidates if isinstance(m.get("platform"), dict)]
        if len(candidates) == 1 and not with_platform:
            return candidates[0]
        matching = [m for m in with_platform if m["platform"].get("os") == host_os
                    and m["platform"].get("architecture") == host_arch]
        if matching:
            exact = [m for m in matching if m["platform"].get("variant") == host_variant]
            return (exact or matching)[0]
        available = ["%s/%s%s" % (m["platform"].get("os"), m["platform"].get("architecture"),
                                  "/" + m["platform"]["variant"] if m["platform"].get("variant") else "")
                     for m in with_platform]
        raise ImageError("%s has no image for %s/%s (it has: %s)"
                         % (what, host_os, host_arch, ", ".join(available) or "none"))


def _parse_json(data: bytes, what: str) -> Any:
    if len(data) > MAX_JSON_BLOB:
        raise ImageError("%s is larger than %d bytes: not a manifest, index or config"
                         % (what, MAX_JSON_BLOB))
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ImageError("%s is not valid JSON: %s" % (what, exc))
