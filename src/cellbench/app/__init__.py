"""The app: the benchmark's winner for people at the microscope (session.py: the work; ui.py: the
Gradio page)."""
