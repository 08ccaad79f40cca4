#!/usr/bin/env bash
# macOS: LungLens.app in a compressed .dmg, from the same PyInstaller spec.
#
# NOT BUILT OR TESTED in this repository's CI (Linux only). Run on macOS 12+ (the build
# machine's architecture is the app's: build on Apple silicon for arm64, on Intel for x86_64):
#   python3.11 -m venv .venv && .venv/bin/pip install -e ".[package]"
#   bash packaging/build_dmg.sh
# Output: dist/LungLens-<version>-macos-<arch>.dmg. The app is signed ad hoc only; for
# distribution outside the building Mac, sign with a Developer ID and notarize (see
# packaging/README.md), or Gatekeeper will refuse to open it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"

"$PY" packaging/build.py --bundle-only          # dist/lunglens/ and dist/LungLens.app
VERSION="$("$PY" -c 'import re,pathlib; print(re.search(r"^version\s*=\s*\"([^\"]+)\"", pathlib.Path("pyproject.toml").read_text(), re.M).group(1))')"
ARCH="$(uname -m)"
APP="dist/LungLens.app"

codesign --force --deep --sign "${CODESIGN_IDENTITY:--}" "$APP"
# The frozen self-test, headless, before anything is packed.
QT_QPA_PLATFORM=offscreen "$APP/Contents/MacOS/lunglens" --self-test

STAGE="$(mktemp -d)"
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
DMG="dist/LungLens-${VERSION}-macos-${ARCH}.dmg"
rm -f "$DMG"
hdiutil create -volname "LungLens ${VERSION}" -srcfolder "$STAGE" -format UDZO -ov "$DMG"
rm -rf "$STAGE"
echo "wrote $DMG"
