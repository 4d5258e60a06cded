#!/usr/bin/env bash
# Extract every user-facing string of the gateway into the template catalog and merge it into the
# Indonesian catalog; then translate the new entries (msgstr "") in
# gateway/segel/i18n/locale/id/LC_MESSAGES/segel.po. tests/gateway/test_i18n.py fails until they are.
set -euo pipefail
cd "$(dirname "$0")/../gateway"
PYBABEL=../.venv/bin/pybabel
$PYBABEL extract -F babel.cfg -k N_ --no-location --sort-output --project=Segel \
  --copyright-holder="Segel contributors" -o segel/i18n/locale/segel.pot segel
if [ -f segel/i18n/locale/id/LC_MESSAGES/segel.po ]; then
  $PYBABEL update --no-fuzzy-matching --ignore-obsolete -i segel/i18n/locale/segel.pot -d segel/i18n/locale -D segel -l id
else
  $PYBABEL init -i segel/i18n/locale/segel.pot -d segel/i18n/locale -D segel -l id
fi
echo "untranslated entries:"; grep -c '^msgstr ""$' segel/i18n/locale/id/LC_MESSAGES/segel.po || true
