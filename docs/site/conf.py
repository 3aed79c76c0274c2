# Sphinx configuration of the oci.runtime docs site (built by scripts/docs.sh, `make docs`).
# The plugin and role pages come from antsibull-docs; the guides are the Markdown files of docs/.
# There is no intersphinx: the site builds offline, and the few references that plugin docs make to
# docsite pages of Ansible itself resolve to external.rst, which links to them.

project = 'oci.runtime'
copyright = 'oci.runtime contributors'
title = 'oci.runtime collection documentation'
html_short_title = 'oci.runtime docs'

extensions = ['sphinx_antsibull_ext', 'myst_parser']
source_suffix = {'.rst': 'restructuredtext', '.md': 'markdown'}
myst_heading_anchors = 3

pygments_style = 'ansible'
highlight_language = 'none'  # plain code blocks of the Markdown guides

html_theme = 'sphinx_ansible_theme'
html_show_sphinx = False
display_version = False
html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False

default_role = 'any'
# The guides link to files of the repository (playbooks, scripts) that are not pages of the site.
suppress_warnings = ['myst.xref_missing']
