#!/usr/bin/env bash
# Installs what the web console's browser test needs, from Debian's
# packages, when it is missing: chromium with its translations, its
# WebDriver (chromedriver) and CJK fonts so Chinese renders in the
# screenshots. Needs root (or sudo).
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
# Chromium's own words (a file input's "选择文件") in Chinese, as a clerk's
# browser shows them: Debian ships every locale but en-US apart.
[ -f /usr/lib/chromium/locales/zh-CN.pak ] || missing+=(chromium-l10n)
# Not `grep -q`: it stops reading at the first match, fc-list then dies of
# SIGPIPE, and under pipefail the installed fonts would count as missing.
fc-list 2>/dev/null | grep -i "Noto Sans CJK" >/dev/null || missing+=(fonts-noto-cjk)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "installing ${missing[*]} for the console's browser test" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
