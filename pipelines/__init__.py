"""Pipeline specs in Pachyderm's format that dlptui ships (package data: `dlptui.resources.pipelines_dir()`)."""
