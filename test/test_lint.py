# Copyright 2026 rrb_ros contributors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""The linters every ament package carries: flake8/pep257 (through ruff), copyright, xmllint."""

from pathlib import Path
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for d in ('rrb_ros', 'test', 'bench', 'launch')
                 for p in (ROOT / d).rglob('*.py')) + [ROOT / 'setup.py']


@pytest.mark.linter
def test_flake8_pep257_via_ruff():
    ruff = shutil.which('ruff') or str(Path(sys.executable).parent / 'ruff')
    proc = subprocess.run([ruff, 'check', '--no-cache', str(ROOT)], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.linter
def test_copyright():
    missing = [str(p.relative_to(ROOT)) for p in SOURCES
               if 'Licensed under the Apache License, Version 2.0' not in p.read_text()]
    assert not missing, f'files without the Apache-2.0 header: {missing}'


@pytest.mark.linter
def test_xmllint_package_xml():
    root = ET.parse(ROOT / 'package.xml').getroot()
    assert root.tag == 'package' and root.get('format') == '3'
    assert root.findtext('name') == 'rrb_ros'
    assert root.find('export/build_type').text == 'ament_python'
