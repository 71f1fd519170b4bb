"""Reads deployment files with parsers we did not write, for test/cluster-deploy.test.ts: YAML with
PyYAML (safe_load, merge keys resolved), XML with the standard library's expat-based ElementTree
(a malformed file fails). Prints one JSON object: path -> parsed document; exits 1 on the first error."""
import json
import sys
import xml.etree.ElementTree as ET

import yaml


def element(e):
    return {
        'tag': e.tag,
        'attrib': dict(e.attrib),
        'text': (e.text or '').strip(),
        'children': [element(c) for c in e],
    }


out = {}
for path in sys.argv[1:]:
    try:
        if path.endswith(('.yaml', '.yml')):
            with open(path, encoding='utf-8') as f:
                out[path] = yaml.safe_load(f)
        elif path.endswith('.xml'):
            out[path] = element(ET.parse(path).getroot())
        else:
            raise ValueError('neither .yaml nor .xml')
    except Exception as err:  # noqa: BLE001 - any parse failure is the answer
        print(f'{path}: {err}', file=sys.stderr)
        sys.exit(1)
print(json.dumps(out))
