#!/bin/sh
# The lessons in ~/infogan-course before a person first uses their server, theirs to edit; what is
# there already is never overwritten. Run by each server pod's postStart hook (values.yaml), as the
# person, so the copies are theirs. The same as the one-server hub's place_lessons
# (coursehub/hubconfig.py, LESSONS); the homework comes through nbgrader's Assignments tab.
set -eu
kit="${INFOGAN_KIT:-/opt/infogan-course}"
target="$HOME/infogan-course"
[ -e "$target" ] && exit 0
# copied beside it first, then renamed: a server stopped halfway never leaves half the lessons
staging="$HOME/.infogan-course-placing"
rm -rf "$staging"
mkdir "$staging"
for name in notebooks docs README.md; do
  if [ -e "$kit/$name" ]; then
    cp -R "$kit/$name" "$staging/"
  fi
done
mv "$staging" "$target"
