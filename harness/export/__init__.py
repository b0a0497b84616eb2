"""Exports of a run record to other systems' formats."""
