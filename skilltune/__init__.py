"""skilltune's hooks into the tools it drives (Axolotl plugins); the pipeline itself lives in
`datagen` and `eval`."""
