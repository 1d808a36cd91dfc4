"""Every modal of the console, on one base (`base.Dialog`: one look, Esc cancels, Enter confirms).

- `confirm.ConfirmDialog`: yes/no before a destructive action, "No" focused.
- `prompt.InputDialog` (one line: a name), `prompt.JumpPrompt` (`:` to a screen, `:q` quits).
- `files.FilePicker`: a local file or folder.
- `start.StartDialog`: config, data commit and name of a new experiment.
- `register.RegisterDialog`: a checkpoint as a new model version.
- `deploy.DeployDialog`, `deploy.VersionDialog`: deploy, switch version, canary.
- `help.HelpDialog` (`?`), `compare.CompareDialog` (two versions), `lineage.LineageDialog`.
"""
