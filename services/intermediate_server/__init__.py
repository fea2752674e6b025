"""中間サーバー — intermediate server.

The intermediate server (system 3 of the assessment, Ⅰ-2; functions 1–10).

Symbol management, queries and provisions through the national network, the provision
database (副本), the permitted-query list, encryption, staff authentication, and the
provision records (情報提供等記録). One platform; each city is a separate tenant.
"""
