"""Reading contact files for import: what the file is, how it is encoded, what its rows
say, and whether each row can become a contact.

Nothing here writes to the database: ``services.imports`` runs the job and
``services.batch_resolution`` lands the rows. Every check raises or returns a message a
marketer can act on (row, column, reason), in the active language.

* ``files``: file type (extension *and* content), size limit.
* ``encoding``: UTF-8 (with or without BOM) or GB18030 (a superset of GBK), found from a
  sample and then proved on the whole file, streaming.
* ``readers``: CSV and XLSX as a header plus a stream of rows, never the whole file.
* ``mapping``: which column goes where (standard field, identity, custom field, ignored).
* ``rows``: one row's values checked and converted into keys and attributes.
* ``error_file``: the downloadable list of bad rows.
"""
